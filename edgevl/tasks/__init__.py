"""edgevl.tasks."""
