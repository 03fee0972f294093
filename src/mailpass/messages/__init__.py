"""Messages: validating what the API receives, accepting it (sent now or queued) and reading a
message's status. What a message *is* (addresses, ids, MIME) lives in ``mailpass.core``."""
