"""runnel.testing."""
