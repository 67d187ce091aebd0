#!/usr/bin/env bash
# Every benchmark with its defaults, one after the other (they must not share the two cores).
# JSON goes to benchmarks/results/ (gitignored); one-line summaries to the terminal.
# Takes about 30 minutes on a 2-core machine.
set -u
cd "$(dirname "$0")/.."
PY=.venv/bin/python
status=0
run() {
  echo "== $* ($(date -u +%H:%M:%S))" >&2
  "$PY" "$@" > /dev/null || status=1
}
run benchmarks/ack_latency.py
run benchmarks/fanout.py
run benchmarks/time_to_tell.py
run benchmarks/store_scale.py
run benchmarks/memory.py
run benchmarks/memory.py --served
echo "== done ($(date -u +%H:%M:%S)); results in benchmarks/results/*-latest.json" >&2
exit $status
