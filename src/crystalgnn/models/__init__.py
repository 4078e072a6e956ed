"""models subpackage of crystalgnn."""
