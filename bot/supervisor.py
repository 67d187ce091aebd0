"""The front's side of the work process: start it, nudge it, restart it when it dies, stop it.

The work process (``python -m bot.workproc``) is a child of the ack process. It gets three
descriptors: the read end of a pipe (a byte on it means "new rows in the inbox"; it also polls,
so a lost nudge costs a moment, not a request), the inbox slot's lock (so the slot stays taken
while either process lives), and nothing else of the front's. On Linux it is killed with the
front (``PR_SET_PDEATHSIG``): a SIGKILLed ``serve`` leaves no worker behind to race its successor,
exactly as the one-process server did. Elsewhere it notices its parent is gone within a poll.

SIGTERM or SIGINT to ``serve`` reaches uvicorn, whose shutdown stops the child with SIGTERM and
waits for it (listeners' post-ack work, then the fulfilment worker, record what they do).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["WorkProcess"]

log = logging.getLogger("bot.supervisor")

STOP_TIMEOUT = 45.0  # the child's own stop waits up to 20 s for listeners and 10 s for the worker
RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)
STABLE_AFTER = 30.0  # a child that ran this long resets the restart delay
_PR_SET_PDEATHSIG = 1
WORK_NICENESS = 10


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # Ctrl-C reaches the whole process group; the front stops the child itself (SIGTERM), so the child
    # ignores SIGINT from its first instruction (an ignored signal stays ignored across exec, and Python
    # then installs no KeyboardInterrupt for it).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.nice(WORK_NICENESS)  # when both want the CPU, the acks get it first
    except OSError:
        pass
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass


class WorkProcess:
    """Keeps one work process running for ``inbox`` while the front runs."""

    def __init__(self, inbox: Path, lock_fd: int, *, args: list[str] | None = None, env: dict[str, str] | None = None):
        self.inbox = inbox
        self.lock_fd = lock_fd
        self.args = args or [sys.executable, "-m", "bot.workproc"]
        self.env = env
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._nudge_w: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.returncode is None else None

    def nudge(self) -> None:
        """Tell the child there is a new row; never blocks (a full pipe already says so)."""
        if self._nudge_w is None:
            return
        try:
            os.write(self._nudge_w, b"\0")
        except (BlockingIOError, BrokenPipeError, OSError):
            pass

    async def start(self) -> None:
        await self._spawn()
        self._task = asyncio.create_task(self._watch(), name="numbers-bot work process")

    async def _spawn(self) -> None:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.args, "--inbox", str(self.inbox), "--nudge-fd", str(read_end), "--parent", str(os.getpid()),
                pass_fds=(read_end, self.lock_fd),
                preexec_fn=_die_with_parent,
                env=self.env,
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        old, self._nudge_w = self._nudge_w, write_end
        if old is not None:
            os.close(old)
        self.starts += 1
        log.info("work process started (pid %s)", self.process.pid)

    async def _watch(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        while True:
            assert self.process is not None
            started = loop.time()
            code = await self.process.wait()
            if self._stopping:
                return
            failures = 0 if loop.time() - started > STABLE_AFTER else failures + 1
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
            log.error("work process %s ended (%s); starting another in %.1fs", self.process.pid, code, delay)
            await asyncio.sleep(delay)
            if self._stopping:
                return
            try:
                await self._spawn()
            except Exception as exc:  # noqa: BLE001 - keep trying: the inbox keeps what is acked
                log.error("could not start the work process (%s)", type(exc).__name__)

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM to the child and wait for it; SIGKILL after ``timeout`` (its rows stay in the inbox)."""
        self._stopping = True
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except asyncio.TimeoutError:
                log.error("work process %s did not stop in %.0fs; killed", process.pid, timeout)
                process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._nudge_w is not None:
            os.close(self._nudge_w)
            self._nudge_w = None

    def describe(self) -> dict[str, Any]:
        return {"pid": self.pid, "starts": self.starts}
