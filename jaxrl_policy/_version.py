"""The package version (its own module, so every floor can read it without importing the package)."""
__version__ = "0.4.0"
