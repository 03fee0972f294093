"""Queue workers' liveness: each registers a row and beats it every few seconds; a worker that
missed ``MISSED_BEATS`` beats is dead, and any live worker takes its messages back at once.

Taking back expires the leases of the dead worker's claims, so that the next claim (of any
worker) picks them up first, as it would once their five-minute lease ran out: the lease stays
the last resort, for a worker that beats but is stuck. A message whose mail went out but whose
outcome was not yet written goes out again then: duplicates are bounded by the dead worker's
sends in flight, as after a lease.

A worker started on the host where one died takes that one's messages back as it registers,
without waiting for its beats to go stale, when its process is gone (``os.kill(pid, 0)``) or
when it had this very pid (a container's process 1, restarted).
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from mailpass.delivery.queue import make_claims_due
from mailpass.storage.database import Connection
from mailpass.storage.tables import messages, workers

__all__ = [
    "MISSED_BEATS",
    "beat",
    "count_live_workers",
    "dead_workers",
    "register_worker",
    "stale_after",
    "take_back",
    "this_host",
    "unregister_worker",
]

MISSED_BEATS = 3  # beats a worker may miss before it is taken for dead

# This process, told apart from an earlier one that had the same pid on the same host (a
# container's process 1, restarted): each worker row notes the process that registered it.
PROCESS_TOKEN = secrets.token_hex(16)


def this_host() -> str:
    return socket.gethostname()[:255]


async def register_worker(connection: Connection, host: str, pid: int, now: datetime) -> int:
    """A new worker's row; its id."""
    result = await connection.execute(
        workers.insert()
        .values(host=host, pid=pid, process=PROCESS_TOKEN, started_at=now, heartbeat_at=now)
        .returning(workers.c.id)
    )
    return int(result.scalar_one())


async def beat(connection: Connection, worker_id: int, now: datetime) -> bool:
    """Note that the worker lives; False when its row is gone (another took it for dead)."""
    result = await connection.execute(
        workers.update().where(workers.c.id == worker_id).values(heartbeat_at=now)
    )
    return result.rowcount == 1


async def unregister_worker(connection: Connection, worker_id: int) -> None:
    await connection.execute(workers.delete().where(workers.c.id == worker_id))


async def dead_workers(
    connection: Connection,
    now: datetime,
    stale_after: timedelta,
    *,
    host: str | None = None,
    own_pid: int | None = None,
) -> list[int]:
    """Workers that stopped beating ``stale_after`` ago; with ``host``, also that host's workers
    whose process is gone, or that had ``own_pid`` in an earlier process (we are that pid now)."""
    query = sa.select(
        workers.c.id, workers.c.host, workers.c.pid, workers.c.process, workers.c.heartbeat_at
    )
    dead = []
    for row in (await connection.execute(query)).all():
        if row.heartbeat_at < now - stale_after or (
            row.host == host
            and row.process != PROCESS_TOKEN
            and (row.pid == own_pid or not _process_exists(row.pid))
        ):
            dead.append(row.id)
    return sorted(dead)


async def take_back(connection: Connection, worker_ids: list[int], now: datetime) -> int:
    """Expire the leases of the messages ``worker_ids`` hold and forget those workers; the
    number of messages taken back."""
    if not worker_ids:
        return 0
    taken = await make_claims_due(
        connection,
        sa.and_(messages.c.worker_id.in_(worker_ids), messages.c.lease_expires_at.is_not(None)),
        now,
    )
    await connection.execute(workers.delete().where(workers.c.id.in_(worker_ids)))
    return taken


def stale_after(heartbeat_interval: float) -> timedelta:
    """How long since its last beat a worker is taken for dead."""
    return timedelta(seconds=heartbeat_interval * MISSED_BEATS)


async def count_live_workers(connection: Connection, now: datetime, stale_after: timedelta) -> int:
    """Workers that beat within ``stale_after``."""
    query = sa.select(sa.func.count()).where(workers.c.heartbeat_at >= now - stale_after)
    return int((await connection.execute(query)).scalar_one())


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Killed, but not yet reaped by its parent: in a container whose process 1 does not reap
    orphans (no init), a dead worker of ``worker --processes`` stays one for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:  # no /proc (not Linux), or it is gone meanwhile
        return False
    state = stat.rsplit(b")", 1)[-1].split()[:1]  # after the command name, which may hold ")"
    return state in ([b"Z"], [b"X"])
