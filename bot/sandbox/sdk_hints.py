"""How to point each provider's official SDK at a served sandbox (``numbers-bot sandbox``).

The lines are the same recipes the conformance tests use (tests/test_sdk_conformance.py):

* ACS: ``PhoneNumbersClient.from_connection_string`` forces ``https://``, so the
  endpoint and an ``AzureKeyCredential`` are given separately;
* Plivo: the SDK resets its base URL from the module constant
  ``plivo.rest.client.PLIVO_API_BASE_URI`` on every request;
* Webex: wxc_sdk reads the class attribute ``wxc_sdk.rest.RestSession.BASE``.
"""

from __future__ import annotations

from bot.sandbox.acs import SANDBOX_ACS_ACCESS_KEY
from bot.sandbox.plivo import SANDBOX_PLIVO_AUTH_ID, SANDBOX_PLIVO_AUTH_TOKEN
from bot.sandbox.webex import SANDBOX_WEBEX_TOKEN


def official_sdk_lines(base: str) -> list[str]:
    """Python lines, one recipe per SDK, for a sandbox served at ``base`` (``http://host:port``)."""
    base = base.rstrip("/")
    return [
        "azure-communication-phonenumbers:",
        f"  PhoneNumbersClient({base!r}, AzureKeyCredential({SANDBOX_ACS_ACCESS_KEY!r}))"
        "  # api_version='2021-03-07' … '2025-06-01'",
        "plivo:",
        f"  plivo.rest.client.PLIVO_API_BASE_URI = {base + '/v1/Account'!r}",
        f"  plivo.RestClient({SANDBOX_PLIVO_AUTH_ID!r}, {SANDBOX_PLIVO_AUTH_TOKEN!r})",
        "wxc-sdk:",
        f"  wxc_sdk.rest.RestSession.BASE = {base + '/v1'!r}",
        f"  WebexSimpleApi(tokens={SANDBOX_WEBEX_TOKEN!r})",
    ]


__all__ = ["official_sdk_lines"]
