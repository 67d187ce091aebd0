"""``numbers-bot store copy --to``: a SQLite store into an empty one (PostgreSQL, or another file),
row for row, ids kept, counts verified; a store that is not empty is refused and left alone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bot.domain.states import State
from bot.store.copy import TABLES, copy_store
from bot.store.db import Store
from tests.conftest import clean_env
from tests.test_store import new_request


def filled_sqlite(path, clock) -> Store:
    store = Store(path, clock=clock)
    for n in range(5):
        req = new_request(store, clock)
        store.transition(req.id, State.PENDING, State.APPROVED, actor="UA", kind="approved", message="ok",
                         changes={"decided_by": "UA", "decided_at": clock()})
        store.transition(req.id, State.APPROVED, State.FULFILLING, actor="bot", kind="fulfilling", message="go",
                         operation={"provider": "acs", "kind": "purchase", "ref": {"n": n}})
        if n % 2 == 0:
            op = store.get_operation(req.id)
            store.transition(req.id, State.FULFILLING, State.FULFILLED, actor="bot", kind="fulfilled", message="ok",
                             finish_operation=op.id,
                             also=lambda s, req=req, n=n: s.record_numbers(s.get_request(req.id), [f"+1833555010{n}"]))
    return store


def dump(store: Store) -> dict[str, list[tuple]]:
    return {t: [tuple(r.values()) for r in store.db.query(f"SELECT * FROM {t} ORDER BY id")] for t in TABLES}


def test_copy_keeps_every_row_and_id_and_new_ids_follow(tmp_path, clock, store_target):
    source = filled_sqlite(str(tmp_path / "old.db"), clock)
    target = Store(store_target, clock=clock)
    copied = copy_store(source, target)
    assert copied == {"offers": 5, "requests": 5, "operations": 5, "events": 18, "numbers": 3}
    assert dump(target) == dump(source)
    # The target goes on where the source stopped: a new request gets the next id, its event too.
    fresh = new_request(target, clock)
    assert fresh.id == 6
    assert target.events_for(fresh.id)[0].id == 19
    source.close()
    target.close()


def test_copy_refuses_a_store_that_is_not_empty_and_changes_nothing(tmp_path, clock, store_target):
    source = filled_sqlite(str(tmp_path / "old.db"), clock)
    target = Store(store_target, clock=clock)
    new_request(target, clock)
    before = dump(target)
    with pytest.raises(Exception, match="is not empty .*1 requests"):
        copy_store(source, target)
    assert dump(target) == before
    source.close()
    target.close()


def test_a_source_written_to_during_the_copy_is_refused_and_nothing_kept(tmp_path, clock, store_target, monkeypatch):
    import bot.store.copy as copying

    source = filled_sqlite(str(tmp_path / "old.db"), clock)
    target = Store(store_target, clock=clock)
    real_rows = copying._rows

    def rows_while_the_bot_runs(store, table):
        yield from real_rows(store, table)
        if table == "events":  # the running bot records one more event after they were read
            store.add_event(None, "bot", "note", "late")

    monkeypatch.setattr(copying, "_rows", rows_while_the_bot_runs)
    with pytest.raises(Exception, match="does not match the source"):
        copy_store(source, target)
    assert all(n == 0 for n in copying.counts(target).values())
    source.close()
    target.close()


def test_the_cli_copies_to_postgresql_and_refuses_twice(tmp_path, clock, pg_url):
    filled_sqlite(str(tmp_path / "numbers.db"), clock).close()
    env = {**clean_env(), "NUMBERS_DB": str(tmp_path / "numbers.db")}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "bot.cli", "store", "copy", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    done = cli("--to", pg_url, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["copied"]["events"] == 18
    again = cli("--to", pg_url)
    assert again.returncode == 2
    assert "is not empty" in again.stderr and "copy only into an empty store" in again.stderr
