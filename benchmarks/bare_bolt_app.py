"""The floor for ``ack_latency.py``: a bare Bolt ``AsyncApp`` under uvicorn that acks ``/numbers``
and then sleeps (as if a 2 s provider call followed), and does nothing else.

Same stack as ``numbers-bot serve`` in HTTP mode: Bolt's ASGI adapter, uvicorn
(asyncio loop, h11), ``process_before_response=False``, the same signing secret,
a Web API client pointed at ``SLACK_API_URL`` (Bolt's first request calls
``auth.test``), INFO logging. Reads ``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET``,
``SLACK_API_URL``, ``PORT`` and ``BARE_SLEEP`` (seconds, default 2).

Run: ``.venv/bin/python benchmarks/bare_bolt_app.py``
"""

from __future__ import annotations

import asyncio
import logging
import os

import uvicorn
from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def create_app() -> AsyncSlackRequestHandler:
    client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/"))
    app = AsyncApp(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"], process_before_response=False)
    pause = float(os.environ.get("BARE_SLEEP", "2"))

    @app.command("/numbers")
    async def numbers(ack) -> None:
        await ack(text=":mag: Searching…")
        await asyncio.sleep(pause)

    return AsyncSlackRequestHandler(app)


def main() -> None:
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = create_app()

    async def asgi(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "http" and scope["path"] == "/healthz":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"ok\n"})
            return
        await handler(scope, receive, send)

    config = uvicorn.Config(asgi, host="127.0.0.1", port=int(os.environ.get("PORT", "3001")), lifespan="on",
                            log_level="info", proxy_headers=True)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
