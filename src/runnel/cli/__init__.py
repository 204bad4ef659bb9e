"""runnel.cli."""
