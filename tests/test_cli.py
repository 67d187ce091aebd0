"""The CLI end to end, as separate processes on one store: search → request → approve → bought."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import clean_env


@pytest.fixture
def cli(tmp_path):
    env = clean_env()
    env.update(
        NUMBERS_DB=str(tmp_path / "numbers.db"),
        NUMBERS_APPROVERS="UAPPROVER1",
        NUMBERS_POLL_INTERVAL="0.05",
        USER="UREQUESTER",
        PLIVO_API="groups",  # the Plivo scenarios here rent from number groups
    )

    def run(*args, ok=True):
        proc = subprocess.run(
            [sys.executable, "-m", "bot.cli", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc

    return run


def test_whole_flow_from_the_terminal(cli):
    offers = json.loads(cli("search", "US", "tollfree", "833", "x2", "--json").stdout)["offers"]
    assert offers, "no offers"
    for o in offers:
        assert {"id", "provider", "numbers", "monthly_cost", "currency", "expires_at"} <= set(o)
    acs = next(o for o in offers if o["provider"] == "acs")
    assert len(acs["numbers"]) == 2 and acs["expires_at"]

    request = json.loads(cli("request", acs["id"], "--reason", "Support line", "--json").stdout)
    assert request["state"] == "pending" and request["numbers"] == acs["numbers"]
    assert [e["kind"] for e in request["events"]] == ["requested"]

    pending = json.loads(cli("pending", "--as", "UAPPROVER1", "--json").stdout)
    assert [r["id"] for r in pending] == [request["id"]]

    approved = cli("approve", str(request["id"]), "--as", "UAPPROVER1", "--json")
    done = json.loads(approved.stdout)
    assert done["state"] == "fulfilled", approved.stderr
    assert sorted(done["numbers"]) == sorted(acs["numbers"])
    assert "fulfilled" in approved.stderr  # progress goes to stderr

    shown = json.loads(cli("show", str(request["id"]), "--json").stdout)
    assert [e["kind"] for e in shown["events"]][-1] == "fulfilled"
    mine = json.loads(cli("mine", "--json").stdout)
    assert mine[0]["id"] == request["id"]

    audit = cli("audit", "--csv", "--as", "UAPPROVER1").stdout
    assert audit.splitlines()[0] == "id,at,request_id,actor,kind,message,data"
    assert "fulfilled" in audit


def test_plivo_rent_and_regulated_pending_from_the_terminal(cli):
    groups = json.loads(cli("search", "FR", "local", "via", "plivo", "--json").stdout)["offers"]
    request = json.loads(cli("request", groups[0]["id"], "--reason", "Paris", "--quantity", "2", "--json").stdout)
    done = json.loads(cli("approve", str(request["id"]), "--as", "UAPPROVER1", "--json").stdout)
    assert done["state"] == "provider_pending"
    assert done["outcome"]


def test_refusals_and_bad_input_from_the_terminal(cli):
    bad = cli("search", "US", "cheap", ok=False)
    assert bad.returncode == 2 and "I don't understand `cheap`" in bad.stderr
    offers = json.loads(cli("search", "US", "tollfree", "--json").stdout)["offers"]
    acs = next(o for o in offers if o["provider"] == "acs")
    request = json.loads(cli("request", acs["id"], "--reason", "x", "--json").stdout)
    refused = cli("approve", str(request["id"]), "--json", ok=False)  # $USER is not an approver
    assert refused.returncode == 1 and "Only approvers" in json.loads(refused.stdout)["error"]
    denied = json.loads(cli("deny", str(request["id"]), "--reason", "not now", "--as", "UAPPROVER1", "--json").stdout)
    assert denied["state"] == "denied"
    missing = cli("show", "999", ok=False)
    assert missing.returncode == 1 and "no request #999" in missing.stderr
    noreason = cli("request", acs["id"], ok=False)
    assert noreason.returncode == 2 and "--reason" in noreason.stderr


def test_cancel_from_the_terminal(cli):
    offers = json.loads(cli("search", "US", "local", "206", "via", "acs", "--json").stdout)["offers"]
    request = json.loads(cli("request", offers[0]["id"], "--reason", "x", "--json").stdout)
    cancelled = json.loads(cli("cancel", str(request["id"]), "--json").stdout)
    assert cancelled["state"] == "cancelled"


def test_demo_prints_purchased_numbers(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=clean_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"request #1 is fulfilled: .*\+1\d{10}", proc.stdout), proc.stdout
    assert not list(tmp_path.iterdir())  # the demo's store was temporary
