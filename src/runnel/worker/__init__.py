"""runnel.worker."""
