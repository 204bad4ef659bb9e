"""runnel.nodes."""
