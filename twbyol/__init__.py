"""twbyol."""
