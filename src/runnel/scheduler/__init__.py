"""runnel.scheduler."""
