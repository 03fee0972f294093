"""Accounts ("users") and their API keys."""
