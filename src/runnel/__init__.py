"""runnel."""
