"""evaluation subpackage of crystalgnn."""
