"""Put N approved purchase requests into a bot's store, for ``ack_latency.py --scenario fulfil``.

Runs the real service (``bot.bootstrap.build``) on the given store and the sandbox
state file beside it (the one ``numbers-bot serve`` with ``NUMBERS_SANDBOX=1``
opens): an ACS search, ``request`` and ``approve`` per request, with no worker.
A server started on that store afterwards finds them approved and fulfils them.
The sandbox answers at once here; the server's own ``NUMBERS_SANDBOX_LATENCY``
makes its purchases slow.

    .venv/bin/python benchmarks/seed_approved.py /tmp/x/numbers.db 50
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from bot.config import load_settings  # noqa: E402
from bot.domain.offers import SearchQuery  # noqa: E402
from bot.sandbox import SandboxServices  # noqa: E402
from bot.services import StaticDirectory  # noqa: E402

TOLLFREE_POOLS = ["833", "844", "855", "866", "877", "888"]


class QuietNotifier:
    """The seeding process tells nobody: the server that fulfils them does."""

    async def notify(self, request, what, *, actor=None, text=None) -> None:
        return None


async def seed(db: Path, count: int) -> list[int]:
    from bot.bootstrap import build

    settings = load_settings(
        NUMBERS_DB=str(db),
        NUMBERS_SANDBOX=True,
        NUMBERS_POLL_INTERVAL=0.05,  # the sandbox answers at once: do not wait 2 s between search polls
        NUMBERS_APPROVERS=C.APPROVER,
        NUMBERS_APPROVAL_CHANNEL=C.APPROVAL_CHANNEL,
        SLACK_BOT_TOKEN=C.BOT_TOKEN,
        SLACK_SIGNING_SECRET=C.SIGNING_SECRET,
        SLACK_API_URL="http://127.0.0.1:9/api/",
    )
    sandbox = SandboxServices.create(settings.sandbox_state_path)
    c = build(settings, sandbox=sandbox, notifier=QuietNotifier(), directory=StaticDirectory(settings.approver_ids))
    ids: list[int] = []

    async def one(i: int) -> None:
        user = f"USEED{i:05d}"
        result = await c.service.search(user, SearchQuery("US", "tollfree", TOLLFREE_POOLS[i % 6], provider="acs"))
        if not result.offers:
            raise RuntimeError(f"seed {i}: no offers ({result.problems})")
        request = await c.service.request(user, result.offers[0].id, "ack benchmark: fulfilment load")
        approved = await c.service.approve(request.id, C.APPROVER)
        if approved.request.state.value != "approved":
            raise RuntimeError(f"seed {i}: request #{request.id} is {approved.request.state.value}, not approved")
        ids.append(request.id)

    try:
        for start in range(0, count, 10):  # ten at a time: the searches wait on polls, not on CPU
            await asyncio.gather(*(one(i) for i in range(start, min(count, start + 10))))
    finally:
        await c.aclose()
    return ids


def main() -> None:
    db, count = Path(sys.argv[1]), int(sys.argv[2])
    for name in [n for n in os.environ if n.startswith(("NUMBERS_", "SLACK_", "ACS_", "PLIVO_", "WEBEX_"))]:
        del os.environ[name]
    ids = asyncio.run(seed(db, count))
    print(f"SEEDED {len(ids)}", flush=True)


if __name__ == "__main__":
    main()
