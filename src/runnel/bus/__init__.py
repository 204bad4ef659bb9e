"""runnel.bus."""
