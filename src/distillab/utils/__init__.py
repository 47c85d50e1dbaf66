"""Small helpers shared by data, modules and the training entry point."""
