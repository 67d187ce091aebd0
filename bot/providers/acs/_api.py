"""The ACS resource over HTTP: the signed client, URLs with the api-version, errors, operations.

``AcsApi`` is the base of ``AcsProvider`` (``client.py``): what every call needs, and nothing
about what a call means.
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from datetime import datetime
from typing import Any, Callable, Self

import httpx

from bot.domain.errors import ConfigError, ProviderError, ProviderUnavailable
from bot.providers._http import Sleep, bounded_client, parse_retry_after, provider_error, send_read
from bot.providers.acs._auth import AcsAuth, parse_connection_string
from bot.providers.acs._wire import PROVIDER, Operation, error_parts

__all__ = ["API_VERSION", "AcsApi"]

API_VERSION = "2025-06-01"  # what the official SDK (1.4.0) sends
_API_VERSION_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}(-preview\d*)?")


class AcsApi:
    """One ACS resource's HTTP API.

    ``transport`` and ``sleep`` are the test seams; ``now`` dates the
    signatures (default: the wall clock), for tests whose service clock moves.
    """

    name = PROVIDER

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        poll_interval: float = 2.0,
        search_timeout: float = 90.0,
        sleep: Sleep = asyncio.sleep,
        assignment_type: str = "application",
        now: Callable[[], datetime] | None = None,
        api_version: str = API_VERSION,
    ):
        endpoint = (endpoint or "").strip()
        if not _API_VERSION_FORMAT.fullmatch(api_version or ""):
            raise ConfigError(["the ACS api-version must look like 2025-06-01 (ACS_API_VERSION)"])
        self.api_version = api_version
        if not re.match(r"^https?://[^/\s]+", endpoint):
            raise ConfigError(["the ACS endpoint must start with https:// and name a host"])
        if assignment_type not in ("application", "person"):
            raise ConfigError(["the ACS assignment type must be application or person"])
        self.endpoint = endpoint.rstrip("/")
        self._base_path = httpx.URL(self.endpoint).path.rstrip("/")
        self._poll_interval = poll_interval
        self._search_timeout = search_timeout
        self._sleep = sleep
        self._assignment_type = assignment_type
        self._client = bounded_client(
            user_agent="numbers-bot (acs)",
            base_url=self.endpoint + "/",
            auth=AcsAuth(access_key) if now is None else AcsAuth(access_key, now=now),
            transport=transport,
            timeout=timeout,
        )

    @classmethod
    def from_connection_string(cls, connection_string: str, **kw: Any) -> Self:
        endpoint, key = parse_connection_string(connection_string)
        return cls(endpoint, key, **kw)

    def __repr__(self) -> str:
        return f"AcsProvider(endpoint={self.endpoint!r}, api_version={self.api_version!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # --- URLs -------------------------------------------------------------------

    def _api(self, path: str) -> str:
        """A service path with our api-version."""
        return f"{path}?api-version={self.api_version}"

    def _follow(self, location: str) -> str:
        """The relative path to request for a Location/Operation-Location value.

        Relative values already carry ``?api-version``; an absolute one is
        reduced to its path so signed requests only ever go to our endpoint.
        """
        url = httpx.URL(location.strip())
        path_and_query = url.raw_path.decode("ascii")
        if self._base_path and path_and_query.startswith(self._base_path + "/"):
            path_and_query = path_and_query[len(self._base_path) :]
        if not path_and_query.startswith("/"):
            path_and_query = "/" + path_and_query
        if "api-version" not in dict(url.params):
            path_and_query += ("&" if url.query else "?") + f"api-version={self.api_version}"
        return path_and_query

    def _operation_path(self, operation_id: str) -> str:
        return self._api(f"/phoneNumbers/operations/{urllib.parse.quote(operation_id, safe='')}")

    # --- HTTP ---------------------------------------------------------------------

    async def _read(self, method: str, path: str, *, json: Any = None) -> httpx.Response:
        request = self._client.build_request(method, path, json=json)
        return await send_read(self._client, request, provider=PROVIDER, sleep=self._sleep)

    def _error(self, response: httpx.Response, *, cls: type[ProviderError] | None = None) -> ProviderError:
        code, message = error_parts(response)
        if message is None:
            request = response.request
            message = f"{request.method} {request.url.path} answered {response.status_code} {response.reason_phrase or 'error'}"
        return provider_error(
            PROVIDER, response, message, code=code, cls=cls, check="the access key in ACS_CONNECTION_STRING"
        )

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            request = response.request
            raise ProviderUnavailable(
                PROVIDER, f"{request.method} {request.url.path} answered with a body that is not a JSON object"
            )
        return body

    async def _get_operation(self, path: str) -> Operation | None:
        response = await self._read("GET", path)
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise self._error(response)
        return Operation(self._json(response), response)

    def _retry_after(self, response: httpx.Response) -> float:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return retry_after if retry_after is not None else self._poll_interval

