"""runnel.services."""
