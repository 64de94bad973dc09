"""edgevl.vision."""
