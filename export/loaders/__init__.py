"""edgevl build side (torch allowed)."""
