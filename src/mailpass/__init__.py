"""MailPass: self-hosted transactional e-mail.

This top-level module stays import-light on purpose: the Python SDK will be re-exported from
here, and importing it must not pull in the server's dependencies.
"""

__version__ = "0.1.0"
