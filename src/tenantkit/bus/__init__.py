"""Cache invalidation across processes: a revocation in one process reaches the caches of every other.

A bus is an :class:`~tenantkit.Invalidator` that takes its dispatcher's place: what a committed change made
stale (a key revoked, rotated, deleted or issued; a member's role changed, a member removed) is evicted in
this process at once and announced to the others, by key id only. The row stays the truth and a message is
only a hint: a bus that may have missed one (start-up, a reconnection, a gap in the numbering) clears its
process's caches, and the caches' time to live bounds the lag when every signal path is down.

* :class:`PostgresNotifyBus`: ``LISTEN``/``NOTIFY`` (psycopg 3), about a millisecond. Never through a
  transaction-mode PgBouncer.
* :class:`RedisBus`: Redis pub/sub (``tenantkit[redis]``).
* :class:`PollingBus`: a change log every process polls, on SQLite, PostgreSQL and MariaDB alike.

Usually configured with :class:`~tenantkit.BusSettings` (``TenantKit(bus=...)`` or ``TENANTKIT_BUS``) and
started by the FastAPI lifespan or the Flask adapter; ``docs/many-instances.md`` measures each.
"""

from tenantkit.bus._base import BusHealth, Delivery, InvalidationBus
from tenantkit.bus._poller import PollingBus
from tenantkit.bus._postgres import PostgresNotifyBus
from tenantkit.bus._redis import RedisBus

__all__ = ["BusHealth", "Delivery", "InvalidationBus", "PollingBus", "PostgresNotifyBus", "RedisBus"]
