"""runnel.api."""
