"""The terminal's small edges: one ``--json`` contract, plain text instead of Slack markup, and an
approved request that nothing is driving carried on by ``approve``."""

from __future__ import annotations

import json

from tests.test_cli import cli  # noqa: F401  (fixture)


def requested(cli, tmp_offer_provider="acs"):  # noqa: F811
    offers = json.loads(cli("search", "US", "tollfree", "--json").stdout)["offers"]
    offer = next(o for o in offers if o["provider"] == tmp_offer_provider)
    return json.loads(cli("request", offer["id"], "--reason", "Support line", "--json").stdout)


def test_approve_no_wait_explains_and_approve_again_finishes_it(cli):  # noqa: F811
    request = requested(cli)
    first = cli("approve", str(request["id"]), "--as", "UAPPROVER1", "--no-wait", "--json")
    assert json.loads(first.stdout)["state"] == "approved"
    assert f"`numbers-bot approve {request['id']}` carries it on from here" in first.stderr
    # Nobody else may push it on.
    refused = cli("approve", str(request["id"]), "--json", ok=False)
    assert refused.returncode == 1 and "Only approvers" in json.loads(refused.stdout)["error"]
    assert json.loads(cli("show", str(request["id"]), "--json").stdout)["state"] == "approved"
    # The approver's plain `approve` carries the approved request to its end.
    second = cli("approve", str(request["id"]), "--as", "UAPPROVER1", "--json")
    done = json.loads(second.stdout)
    assert done["state"] == "fulfilled" and len(done["numbers"]) == 1, second.stderr
    assert "already approved; carrying it on" in second.stderr
    kinds = [e["kind"] for e in json.loads(cli("show", str(request["id"]), "--json").stdout)["events"]]
    assert kinds.count("approved") == 1 and kinds.count("fulfilled") == 1


def test_terminal_output_is_plain_text_without_slack_markup(cli):  # noqa: F811
    request = requested(cli)
    other = cli("cancel", str(request["id"]), "--as", "UOTHERUSER", ok=False)
    assert other.returncode == 1
    assert "Only the requester (@UREQUESTER)" in other.stderr and "<@" not in other.stderr
    as_json = cli("cancel", str(request["id"]), "--as", "UOTHERUSER", "--json", ok=False)
    assert json.loads(as_json.stdout) == {"error": f"Only the requester (@UREQUESTER) can cancel request #{request['id']}.", "kind": "NotAllowed"}


def test_every_verb_answers_json_in_one_shape_errors_included(cli):  # noqa: F811
    doctor = cli("doctor", "--json", ok=False)
    checks = json.loads(doctor.stdout)["checks"]
    assert checks and all(set(c) == {"name", "ok", "detail"} for c in checks)
    assert {c["name"] for c in checks} >= {"settings", "slack", "providers", "store"}
    for args in (("show", "abc"), ("search", "US", "cheap"), ("show", "999")):
        proc = cli(*args, "--json", ok=False)
        answer = json.loads(proc.stdout)
        assert set(answer) == {"error", "kind"} and proc.returncode in (1, 2), (args, proc.stdout)
    for args in (("mine",), ("pending", "--as", "UAPPROVER1"), ("inventory",), ("costs",)):
        json.loads(cli(*args, "--json").stdout)  # one JSON document, nothing else on stdout
