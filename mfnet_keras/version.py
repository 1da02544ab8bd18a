"""The package version (a leaf module: the modules that record it import it without the package root)."""

__version__ = "0.1.0"
