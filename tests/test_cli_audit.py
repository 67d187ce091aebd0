"""``numbers-bot audit``: the audit log as the service writes it (the CSV Slack's ``/numbers audit``
uploads), to stdout or ``--output``; ``--csv`` asks for that CSV even beside ``--json``."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.test_cli import cli  # noqa: F401 - the fixture

HEADER = "id,at,request_id,actor,kind,message,data"


@pytest.fixture
def requested(cli):  # noqa: F811
    offers = json.loads(cli("search", "US", "tollfree", "--json").stdout)["offers"]
    acs = next(o for o in offers if o["provider"] == "acs")
    cli("request", acs["id"], "--reason", "Support line", "--json")
    return cli


def test_csv_with_json_writes_the_csv_to_the_file_and_one_json_document_about_it(requested, tmp_path):
    out = tmp_path / "audit.csv"
    proc = requested("audit", "7", "--csv", "--json", "--output", str(out), "--as", "UAPPROVER1")
    summary = json.loads(proc.stdout)  # stdout is exactly one JSON document
    assert summary == {"days": 7, "events": summary["events"], "file": str(out), "format": "csv"}
    text = out.read_text()
    assert text.splitlines()[0] == HEADER
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == summary["events"] >= 3
    assert {"searched", "requested", "audited"} <= {r["kind"] for r in rows}


def test_csv_with_json_and_no_file_is_refused_in_words(requested):
    proc = requested("audit", "--csv", "--json", "--as", "UAPPROVER1", ok=False)
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["kind"] == "UsageError"
    assert "--output FILE" in proc.stderr


def test_csv_is_the_default_and_json_alone_is_a_list_of_rows(requested, tmp_path):
    plain_csv = requested("audit", "--as", "UAPPROVER1").stdout
    explicit = requested("audit", "--csv", "--as", "UAPPROVER1").stdout
    assert plain_csv.splitlines()[0] == explicit.splitlines()[0] == HEADER
    rows = json.loads(requested("audit", "--json", "--as", "UAPPROVER1").stdout)
    assert isinstance(rows, list) and set(rows[0]) == set(HEADER.split(","))

    out = tmp_path / "to-file.csv"
    proc = requested("audit", "--csv", "-o", str(out), "--as", "UAPPROVER1")
    assert proc.stdout == ""
    written = len(out.read_text().splitlines()) - 1
    assert f"wrote {written} event(s) of the last 30 day(s) to {out}" in proc.stderr


def test_an_output_that_cannot_be_written_or_a_refused_caller_leaves_no_file(requested, tmp_path):
    proc = requested("audit", "-o", str(tmp_path / "no-such-dir" / "a.csv"), "--as", "UAPPROVER1", ok=False)
    assert proc.returncode == 2 and "cannot write --output" in proc.stderr and "Traceback" not in proc.stderr
    refused = requested("audit", "-o", str(tmp_path / "b.csv"), "--as", "UOUTSIDER", ok=False)
    assert refused.returncode == 1 and "Only approvers" in refused.stderr
    assert not (tmp_path / "b.csv").exists()
