"""hashbench's version (a leaf module: the package face re-exports it, provenance records it)."""

__version__ = "0.1.0"
