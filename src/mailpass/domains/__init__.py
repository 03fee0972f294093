"""Sending domains: an account's own domains, their DKIM keys and the DNS records to publish."""
