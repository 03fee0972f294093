"""The release of MailPass this SDK ships with (its User-Agent tells the server)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
