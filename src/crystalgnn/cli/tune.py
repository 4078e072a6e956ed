"""``crystalgnn tune`` (work in progress)."""
