"""Measurement probe the benchmarks inject into the processes they measure (never used by the product).

``ack_latency.py`` puts this directory first on ``PYTHONPATH`` and sets
``BENCH_PROBE_DIR``; Python imports ``sitecustomize`` at start-up, in every
process of the measured server (a child started with the same environment
too). The probe times every garbage collection through ``gc.callbacks`` and
keeps the full (generation 2) ones and any pause of 1 ms or more (the last
2,000) with its end time on ``time.monotonic()`` (CLOCK_MONOTONIC, system-wide on Linux, so the
benchmark can cut them to a load window). A daemon thread writes
``probe-<pid>.json`` (pauses, collections per generation, ``gc.isenabled()``,
the thresholds, frozen objects) by atomic rename, within 0.25 s of a
collection and at least once a second. Without
``BENCH_PROBE_DIR`` it does nothing.
"""

import os

if os.environ.get("BENCH_PROBE_DIR"):
    import gc
    import json
    import sys
    import threading
    import time

    _DIR = os.environ["BENCH_PROBE_DIR"]
    _KEEP = 2000  # the last pauses kept: enough for a load window, cheap to write
    _state = {"started": 0.0, "pauses": [], "counts": [0, 0, 0]}

    def _on_gc(phase, info):
        if phase == "start":
            _state["started"] = time.perf_counter()
            return
        ms = (time.perf_counter() - _state["started"]) * 1000.0
        generation = info.get("generation", 0)
        _state["counts"][generation] += 1
        if generation == 2 or ms >= 1.0:
            pauses = _state["pauses"]
            pauses.append((round(time.monotonic(), 4), generation, round(ms, 3)))
            if len(pauses) > _KEEP:
                del pauses[: len(pauses) - _KEEP]

    def _write():
        data = {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "argv": sys.argv[:6],
            "written_at": time.monotonic(),
            "gc_enabled": gc.isenabled(),
            "thresholds": gc.get_threshold(),
            "frozen": gc.get_freeze_count(),
            "counts": list(_state["counts"]),
            "pauses": list(_state["pauses"]),
        }
        path = os.path.join(_DIR, f"probe-{os.getpid()}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(data, f)
        os.replace(path + ".tmp", path)

    def _writer():
        # Written when a collection happened since the last write, and at least once a second (the
        # benchmark waits for a write after its window): the probe must not cost the process much.
        last_counts, last_write = None, 0.0
        while True:
            time.sleep(0.25)
            counts = list(_state["counts"])
            if counts == last_counts and time.monotonic() - last_write < 1.0:
                continue
            try:
                _write()
            except Exception:  # the directory went away at the end of a run
                return
            last_counts, last_write = counts, time.monotonic()

    def _start():
        _state["pauses"] = []
        _state["counts"] = [0, 0, 0]
        threading.Thread(target=_writer, name="bench-probe", daemon=True).start()

    gc.callbacks.append(_on_gc)
    os.register_at_fork(after_in_child=_start)
    _start()
