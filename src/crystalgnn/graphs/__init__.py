"""graphs subpackage of crystalgnn."""
