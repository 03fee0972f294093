"""The MailPass benchmark: MailPass side by side with Postfix and the machine's raw SMTP ceiling,
all measured in one run against one fast C SMTP sink. ``bench/run`` is the command; see
``bench/README.md``."""
