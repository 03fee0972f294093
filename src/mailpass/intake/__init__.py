"""What providers tell MailPass after taking a mail: deliveries, bounces, complaints,
unsubscribes, reported to each provider's webhook, checked, and recorded as the message's
events (``intake.service``)."""
