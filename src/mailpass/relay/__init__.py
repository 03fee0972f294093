"""The SMTP relay: applications that send mail over SMTP send through MailPass, into the same
queue, record, limits and events as the HTTP API's messages."""
