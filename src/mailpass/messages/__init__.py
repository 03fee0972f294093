"""Messages: validating what the API receives, composing MIME, recording and sending."""
