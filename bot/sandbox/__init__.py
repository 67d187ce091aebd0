"""Simulated ACS, Plivo, Webex, Twilio and Telnyx services that speak the real HTTP protocols.

``SandboxServices`` builds the apps over one state file (each in its own
table) and one clock; ``combined_app`` serves them on one port, told apart by
path as the real APIs are: ``/v1/Account/…`` is Plivo, ``/2010-04-01/…`` and
``/v1/PhoneNumbers/…`` (its Pricing API) are Twilio, ``/v2/…`` is Telnyx, other
``/v1/…`` paths are Webex, everything else (``/availablePhoneNumbers``,
``/phoneNumbers``) is ACS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bot.sandbox.common import Clock, SandboxApp, SandboxState


@dataclass
class SandboxServices:
    acs: SandboxApp
    plivo: SandboxApp
    webex: SandboxApp
    clock: Clock
    twilio: SandboxApp | None = None
    telnyx: SandboxApp | None = None

    @classmethod
    def create(cls, path: str | None = None, clock: Clock | None = None, latency: float = 0.0) -> "SandboxServices":
        from bot.sandbox.acs import create_acs_sandbox
        from bot.sandbox.plivo import create_plivo_sandbox
        from bot.sandbox.telnyx import create_telnyx_sandbox
        from bot.sandbox.twilio import create_twilio_sandbox
        from bot.sandbox.webex import create_webex_sandbox

        clock = clock or Clock()
        services = cls(
            acs=create_acs_sandbox(SandboxState(path, "acs"), clock),
            plivo=create_plivo_sandbox(SandboxState(path, "plivo"), clock),
            webex=create_webex_sandbox(SandboxState(path, "webex"), clock),
            clock=clock,
            twilio=create_twilio_sandbox(SandboxState(path, "twilio"), clock),
            telnyx=create_telnyx_sandbox(SandboxState(path, "telnyx"), clock),
        )
        for app in services.apps.values():
            app.latency = latency
        return services

    @property
    def apps(self) -> dict[str, SandboxApp]:
        apps = {"acs": self.acs, "plivo": self.plivo, "webex": self.webex}
        for name, app in (("twilio", self.twilio), ("telnyx", self.telnyx)):
            if app is not None:
                apps[name] = app
        return apps


def combined_app(services: SandboxServices) -> Callable:
    """One ASGI app serving them all, routed by path like the real hosts."""

    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await services.acs(scope, receive, send)
            return
        path = scope.get("path", "")
        if path.startswith("/v1/Account/"):
            target = services.plivo
        elif services.twilio is not None and path.startswith(("/2010-04-01/", "/v1/PhoneNumbers/")):
            target = services.twilio
        elif services.telnyx is not None and path.startswith("/v2/"):
            target = services.telnyx
        elif path.startswith("/v1/"):
            target = services.webex
        elif path.startswith("/_sandbox/") and scope.get("query_string", b"").startswith(b"service="):
            name = scope["query_string"].decode().split("=", 1)[1].split("&", 1)[0]
            target = services.apps.get(name, services.acs)
        else:
            target = services.acs
        await target(scope, receive, send)

    return app
