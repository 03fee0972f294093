"""The suppression list: per account, the addresses MailPass no longer sends to."""
