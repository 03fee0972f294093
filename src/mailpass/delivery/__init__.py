"""The queue: accepting batches, claiming due messages, sending them, retrying what failed."""
