"""Every provider adapter, and the test double, implements the ``Provider`` port with its
signatures: the services call ``release(number, ref)`` on all of them alike."""

from __future__ import annotations

import inspect

import pytest

from bot.ports import Provider
from bot.providers.acs import AcsProvider
from bot.providers.plivo import PlivoProvider
from bot.providers.plivo_numbers import PlivoNumbersProvider
from bot.providers.telnyx import TelnyxProvider
from bot.providers.twilio import TwilioProvider
from bot.providers.webex import WebexProvider
from tests.fakes import FakeProvider

MOVES = ["search", "prepare", "submit", "poll", "recover", "release", "check", "aclose"]


def parameters(function) -> list[str]:
    return [p.name for p in inspect.signature(function).parameters.values() if p.kind is not p.VAR_KEYWORD]


@pytest.mark.parametrize(
    "adapter",
    [AcsProvider, PlivoProvider, PlivoNumbersProvider, TelnyxProvider, TwilioProvider, WebexProvider, FakeProvider],
)
@pytest.mark.parametrize("move", MOVES)
def test_every_adapter_takes_the_ports_arguments(adapter, move):
    implemented = getattr(adapter, move)
    assert inspect.iscoroutinefunction(implemented)
    # The port's required parameters, in its order; an adapter may add optional ones after them.
    wanted = parameters(getattr(Provider, move))
    assert parameters(implemented)[: len(wanted)] == wanted
    extra = list(inspect.signature(implemented).parameters.values())[len(wanted):]
    assert all(p.default is not p.empty or p.kind is p.VAR_KEYWORD for p in extra)


def test_the_release_port_takes_the_held_numbers_ref():
    assert parameters(Provider.release) == ["self", "number", "ref"]
