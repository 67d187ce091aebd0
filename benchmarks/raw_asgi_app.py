"""The floor of the stack for ``ack_latency.py``: a raw ASGI app under uvicorn that reads the body and answers 200.

No Bolt, no signature check, no parsing: what uvicorn and the loopback cost per
request on this machine, measured in the same run as the bot and the bare Bolt
app. Same uvicorn settings as ``bare_bolt_app.py`` (``uvicorn.Config`` defaults,
INFO logging, ``proxy_headers``); answers the JSON a slash command's ack carries.
Reads ``PORT``.

Run: ``.venv/bin/python benchmarks/raw_asgi_app.py``
"""

from __future__ import annotations

import logging
import os

import uvicorn

ACK = b'{"response_type": "ephemeral", "text": ":mag: Searching\\u2026"}'


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b"ok\n" if scope["path"] == "/healthz" else ACK
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(app, host="127.0.0.1", port=int(os.environ.get("PORT", "3002")), lifespan="on",
                            log_level="info", proxy_headers=True)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
