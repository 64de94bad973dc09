from edgevl.cli import run

run()
