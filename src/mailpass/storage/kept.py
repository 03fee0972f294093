"""Connections kept out of the pool between uses, for the next statement.

A checkout from SQLAlchemy's async pool runs in a new greenlet, and with the check-in it cost
the client more CPU than a statement's own round trip: one ``SELECT 1`` at a time took 175 µs
through the pool and 80 µs on a kept connection (bare asyncpg: 85). On SQLite a key read took
23 µs through the pool and 9 µs kept. A /send on PostgreSQL takes a connection three times, a
/status once.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KEPT_CONNECTIONS", "KeptConnections"]

# Connections kept at most. On PostgreSQL about as many as run at once under load: one for each
# kind of statement in flight (the reads, the inserts, the writes that are grouped). SQLite's
# reads never need more than one.
KEPT_CONNECTIONS = 4


class KeptConnections:
    """Pooled connections (SQLAlchemy's ``PoolProxiedConnection``) kept for the next use; the
    last used on top."""

    def __init__(self) -> None:
        self.connections: list[Any] = []

    def take(self) -> Any | None:
        """A kept connection, or None: then check one out of the pool."""
        return self.connections.pop() if self.connections else None

    def keep(self, pooled: Any) -> None:
        """Keep ``pooled``, a connection that has just served a statement well, for the next
        one, or give it back to the pool when ``KEPT_CONNECTIONS`` are kept already."""
        if len(self.connections) < KEPT_CONNECTIONS:
            self.connections.append(pooled)
        else:
            pooled.close()

    def close_all(self) -> None:
        """Give every kept connection back to its pool (before the pool is disposed)."""
        kept, self.connections = self.connections, []
        for pooled in kept:
            pooled.close()
