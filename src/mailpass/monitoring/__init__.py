"""``GET /metrics``: what the database says of the whole installation (messages by status and
provider, the queue's depth and oldest due message, the webhook backlog, providers marked
down, live workers) beside what each process measured of itself (``runtime.metrics``), in
Prometheus's text format."""
