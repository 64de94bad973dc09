"""edgevl.text."""
