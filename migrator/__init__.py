"""bgmigrate: blue-green safe database schema migrations."""

__version__ = "0.1.0"
