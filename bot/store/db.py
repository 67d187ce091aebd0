"""The store: offers, requests, operations in flight, the inventory and the audit log, on SQLite or
PostgreSQL, as one ``Store``.

``Store`` is put together from its parts, each a module with one job:

* ``connection`` — opening the store (engine, pragmas, migrations), ``atomic`` transactions,
  events, and the names lease holders go by;
* ``requests`` — offers, requests and their compare-and-set moves, the audit log;
* ``operations`` — operations in flight at a provider and their leases, Slack delivery claims;
* ``inventory`` — the numbers held;
* ``codec`` — what the models become in rows.

One ``Store`` is one connection, for one thread; async code uses ``ThreadedStore``.
"""

from __future__ import annotations

from bot.store.inventory import Inventory
from bot.store.operations import Operations
from bot.store.requests import Requests

__all__ = ["Store"]


class Store(Requests, Operations, Inventory):
    """One connection to the store. Not for the event loop: ``ThreadedStore`` runs it on threads."""
