"""training subpackage of crystalgnn."""
