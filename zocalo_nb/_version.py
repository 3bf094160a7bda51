"""The package version, in a module of its own: anything may import it without loading
the rest of zocalo_nb."""

__version__ = "0.1.0"
