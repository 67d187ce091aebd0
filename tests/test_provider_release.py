"""Every adapter releases with one signature, ``release(number, ref)``: the worker calls them all alike."""

from __future__ import annotations

import inspect

import pytest

from bot.providers.acs import AcsProvider
from bot.ports import Provider
from bot.providers.plivo import PlivoProvider
from bot.providers.plivo_numbers import PlivoNumbersProvider
from bot.providers.telnyx import TelnyxProvider
from bot.providers.twilio import TwilioProvider
from bot.providers.webex import WebexProvider
from tests.fakes import FakeProvider

ADAPTERS = [AcsProvider, PlivoProvider, PlivoNumbersProvider, TelnyxProvider, TwilioProvider, WebexProvider, FakeProvider]


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.__name__)
def test_release_takes_the_number_and_the_held_numbers_ref(adapter):
    port = inspect.signature(Provider.release)
    mine = inspect.signature(adapter.release)
    assert list(mine.parameters) == list(port.parameters) == ["self", "number", "ref"]
    assert all(p.default is inspect.Parameter.empty for p in mine.parameters.values())
    assert inspect.iscoroutinefunction(adapter.release)
