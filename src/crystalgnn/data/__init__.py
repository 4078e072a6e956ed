"""data subpackage of crystalgnn."""
