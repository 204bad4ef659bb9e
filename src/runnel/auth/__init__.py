"""runnel.auth."""
