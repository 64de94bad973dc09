import sys

from edgevl.cli import main

sys.exit(main())
