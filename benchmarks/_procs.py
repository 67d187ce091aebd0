"""Processes for the benchmarks: servers started in their own session, read from /proc, all killed at the end.

* ``Server``: a child in its own process group (so everything it starts can be stopped by that
  group's id), its output in a log file; ``stop()`` asks with SIGINT, then SIGKILLs the group.
* ``tree`` / ``listening_pids``: the server's processes, and which of them holds the listening socket
  (the process that acks, whether the server is one process or a front beside a work process).
* ``cpu_seconds`` / ``rss_kib``: per process, from ``/proc/<pid>/stat`` and ``status``.
* ``ProbeReader``: what ``_probe/sitecustomize.py`` wrote for a process, cut to a time window.

Linux only (``/proc``); every wait is bounded.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncio

PROBE_DIR = Path(__file__).resolve().parent / "_probe"

__all__ = ["Server", "tree", "listening_pids", "cpu_seconds", "rss_kib", "ProbeReader", "probe_env", "started", "exit_on_sigterm", "PROBE_DIR"]


_STARTED: set[int] = set()  # process groups this run started (each child leads its own)


@atexit.register
def _kill_leftovers() -> None:
    """However the run ends (an exception, Ctrl-C), no server it started outlives it."""
    for pgid in list(_STARTED):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def exit_on_sigterm() -> None:
    """SIGTERM ends a run like Ctrl-C: ``finally`` blocks stop the servers, the exit kills what is left."""
    signal.signal(signal.SIGTERM, _interrupt)


def started(proc: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
    """Remember a child started with ``start_new_session=True``, for the exit."""
    _STARTED.add(proc.pid)
    return proc


def probe_env(env: dict[str, str], probe_dir: Path) -> dict[str, str]:
    """``env`` with the probe injected: its directory first on PYTHONPATH, where to write."""
    out = dict(env)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROBE_DIR), env.get("PYTHONPATH", "")) if p)
    out["BENCH_PROBE_DIR"] = str(probe_dir)
    return out


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (not its children), seconds."""
    fields = _stat_fields(pid)
    if not fields:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree(root: int) -> list[int]:
    """``root`` and every descendant alive now."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:
                parents[int(entry.name)] = int(fields[1])
    out, frontier = [root], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        out.extend(children)
        frontier = children
    return out


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    return inodes


def listening_pids(pids: list[int], port: int) -> list[int]:
    """Those of ``pids`` that hold a socket listening on ``port``."""
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    holders = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    holders.append(pid)
                    break
            except OSError:
                continue
    return holders


class Server:
    """A server process in its own session: ``pgid == pid``, so its children die with it."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path, port: int):
        self.name, self.port = name, port
        self.log_path = cwd / f"{name}.log"
        self._log = open(self.log_path, "ab")
        self.proc = started(subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                             start_new_session=True))
        self.url = f"http://127.0.0.1:{port}/slack/events"
        self.ack_pid = self.proc.pid

    async def ready(self, session: aiohttp.ClientSession, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                async with session.get(f"http://127.0.0.1:{self.port}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start within {timeout}s; see {self.log_path}")

    def processes(self) -> list[int]:
        return tree(self.proc.pid) if self.proc.poll() is None else []

    def find_ack_pid(self) -> int:
        """The process holding the listening socket (a profiler or supervisor above it is not it)."""
        holders = listening_pids(self.processes(), self.port)
        python = [p for p in holders if "py-spy" not in _cmdline(p)]
        self.ack_pid = (python or holders or [self.proc.pid])[-1]
        return self.ack_pid

    def work_pids(self) -> list[int]:
        """The server's other Python processes (the work process of a split server)."""
        return [p for p in self.processes() if p != self.ack_pid and "py-spy" not in _cmdline(p)]

    @staticmethod
    def kill_group(proc: subprocess.Popen[Any]) -> None:
        """SIGKILL a helper started with ``start_new_session=True`` and everything it started."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def stop(self, timeout: float = 20.0) -> None:
        """SIGINT (a graceful stop), then SIGKILL to the whole process group."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout=timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class ProbeReader:
    """The probe files of one run's processes."""

    def __init__(self, directory: Path):
        self.directory = directory

    def read(self, pid: int) -> dict[str, Any] | None:
        try:
            return json.loads((self.directory / f"probe-{pid}.json").read_text())
        except (OSError, ValueError):
            return None

    async def fresh(self, pid: int, after: float, timeout: float = 3.0) -> dict[str, Any] | None:
        """The probe's record written after ``after`` (monotonic), waiting for its next write."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.read(pid)
            if data and data["written_at"] >= after or time.monotonic() > deadline:
                return data
            await asyncio.sleep(0.1)

    @staticmethod
    def window(data: dict[str, Any] | None, start: float, end: float) -> dict[str, Any]:
        """Longest pause and full collections between ``start`` and ``end``."""
        if not data:
            return {"probe": False}
        inside = [p for p in data["pauses"] if start <= p[0] <= end]
        full = [p for p in inside if p[1] == 2]
        return {
            "gc_max_pause_ms": round(max((p[2] for p in inside), default=0.0), 2),
            "gc_full_collections": len(full),
            "gc_full_max_ms": round(max((p[2] for p in full), default=0.0), 2),
            "gc_enabled": data["gc_enabled"],
            "gc_frozen": data["frozen"],
        }
