"""The store for async code: every call runs on a thread, never on the event loop.

Store calls block: a commit waits for fsync (or PostgreSQL's answer), and a
write waits up to the busy timeout for another process's lock. On the event loop either would stall every
Slack ack and ``/healthz`` with it. ``ThreadedStore`` exposes the ``Store``'s
methods as coroutines; each call runs on a small pool of threads, each thread
with its own connection (on PostgreSQL borrowed from the process's pool), so
reads go on while one write waits for a lock.

An in-memory store has one connection and so one thread.

A call whose caller is cancelled still finishes on its thread: a state change
and its event are committed or not, never cut in half, and an answer a
provider gave is recorded even if the task that asked for it is gone.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Concatenate, ParamSpec, TypeVar

from bot.store.db import Store
from bot.store.postgres import shown

__all__ = ["ThreadedStore"]

P = ParamSpec("P")
T = TypeVar("T")

THREADS = 4


def _off_loop(method: Callable[Concatenate[Store, P], T]) -> Callable[Concatenate["ThreadedStore", P], Awaitable[T]]:
    """``Store.method`` as a coroutine method of ``ThreadedStore``, run on the store's threads."""

    async def call(self: "ThreadedStore", *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.run(lambda store: method(store, *args, **kwargs))

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


class ThreadedStore:
    def __init__(self, store: Store, *, threads: int = THREADS):
        self.origin = store
        self.clock = store.clock
        self.path = store.path
        self._shared = store.in_memory
        self._local = threading.local()
        self._opened: list[Store] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self._shared else threads, thread_name_prefix="numbers-store"
        )

    def _store(self) -> Store:
        """This thread's connection (opened on first use)."""
        if self._shared:
            return self.origin
        store = getattr(self._local, "store", None)
        if store is None:
            store = Store(self.path, clock=self.clock, busy_timeout=self.origin.busy_timeout)
            self._local.store = store
            with self._lock:
                self._opened.append(store)
        return store

    async def run(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` on a store thread and return its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._store()))

    def close(self) -> None:
        """Wait for calls under way, then close every connection the threads opened."""
        self._executor.shutdown(wait=True)
        with self._lock:
            for store in self._opened:
                store.close()
            self._opened.clear()

    # --- the Store's methods, off the loop -------------------------------------------

    add_event = _off_loop(Store.add_event)
    save_offers = _off_loop(Store.save_offers)
    get_offer = _off_loop(Store.get_offer)
    create_request = _off_loop(Store.create_request)
    live_request_for = _off_loop(Store.live_request_for)
    get_request = _off_loop(Store.get_request)
    events_for = _off_loop(Store.events_for)
    transition = _off_loop(Store.transition)
    update_request = _off_loop(Store.update_request)
    list_requests = _off_loop(Store.list_requests)
    committed_this_month = _off_loop(Store.committed_this_month)
    due_for_expiry = _off_loop(Store.due_for_expiry)
    due_for_reminder = _off_loop(Store.due_for_reminder)
    approved_without_operation = _off_loop(Store.approved_without_operation)
    held_numbers = _off_loop(Store.held_numbers)
    held_number = _off_loop(Store.held_number)
    held_numbers_ending = _off_loop(Store.held_numbers_ending)
    monthly_costs = _off_loop(Store.monthly_costs)
    open_release_for = _off_loop(Store.open_release_for)
    get_operation = _off_loop(Store.get_operation)
    get_operation_by_id = _off_loop(Store.get_operation_by_id)
    open_operations = _off_loop(Store.open_operations)
    claim_operation = _off_loop(Store.claim_operation)
    renew_lease = _off_loop(Store.renew_lease)
    update_operation = _off_loop(Store.update_operation)
    take_delivery = _off_loop(Store.take_delivery)

    def __repr__(self) -> str:
        return f"ThreadedStore({shown(str(self.path))!r})"

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not defined above: say what to do instead of a bare AttributeError.
        raise AttributeError(f"ThreadedStore has no {name!r}; add it with _off_loop(Store.{name}) or use run()")
