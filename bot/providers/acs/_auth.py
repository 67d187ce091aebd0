"""ACS request signing (HMAC-SHA256, as the official SDK signs) and the connection string.

Every request is signed over the verb, path and query, ``x-ms-date``, host and a SHA-256 of
the body (``AcsAuth``). The access key lives only inside ``AcsAuth``; no message, log line or
repr built here contains it, and errors about it name the setting, never the value.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import re
from datetime import datetime, timezone
from typing import Callable, Generator

import httpx

from bot.domain.errors import ConfigError

__all__ = [
    "EMPTY_BODY_HASH", "SIGNED_HEADERS", "AcsAuth", "authorization_header", "compute_signature", "content_hash",
    "decode_access_key", "parse_connection_string", "rfc1123", "signing_headers", "string_to_sign",
]

EMPTY_BODY_HASH = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
SIGNED_HEADERS = "x-ms-date;host;x-ms-content-sha256"


def content_hash(body: bytes) -> str:
    """``x-ms-content-sha256``: base64 of the body's SHA-256."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def rfc1123(when: datetime) -> str:
    """``x-ms-date``, e.g. ``Thu, 08 Dec 2022 23:09:33 GMT``."""
    return email.utils.format_datetime(when.astimezone(timezone.utc), usegmt=True)


def string_to_sign(method: str, path_and_query: str, x_ms_date: str, host: str, body_hash: str) -> str:
    return f"{method.upper()}\n{path_and_query}\n{x_ms_date};{host};{body_hash}"


def decode_access_key(access_key: str | bytes) -> bytes:
    """The HMAC key bytes; the error names the setting, never the value."""
    if isinstance(access_key, bytes):
        return access_key
    try:
        key = base64.b64decode(access_key.strip(), validate=True)
    except (ValueError, TypeError):
        raise ConfigError(["the ACS access key is not valid base64 (copy it again from the Azure portal)"]) from None
    if not key:
        raise ConfigError(["the ACS access key is empty"])
    return key


def compute_signature(
    access_key: str | bytes, method: str, path_and_query: str, x_ms_date: str, host: str, body_hash: str
) -> str:
    """``base64(HMAC-SHA256(base64decode(key), string_to_sign))`` exactly as the SDK signs."""
    message = string_to_sign(method, path_and_query, x_ms_date, host, body_hash).encode("utf-8")
    digest = hmac.new(decode_access_key(access_key), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def authorization_header(signature: str) -> str:
    return f"HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature={signature}"


def signing_headers(
    access_key: str | bytes, method: str, url: httpx.URL, body: bytes, when: datetime
) -> dict[str, str]:
    """The three headers that authenticate one request."""
    x_ms_date = rfc1123(when)
    body_hash = content_hash(body)
    host = url.netloc.decode("ascii")  # host, plus :port when the URL names one
    path_and_query = url.raw_path.decode("ascii")
    signature = compute_signature(access_key, method, path_and_query, x_ms_date, host, body_hash)
    return {
        "x-ms-date": x_ms_date,
        "x-ms-content-sha256": body_hash,
        "Authorization": authorization_header(signature),
    }


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class AcsAuth(httpx.Auth):
    """Signs every request with the resource's access key (HMAC-SHA256)."""

    requires_request_body = True

    def __init__(self, access_key: str | bytes, *, now: Callable[[], datetime] = _utcnow):
        self._key = decode_access_key(access_key)
        self._now = now

    def __repr__(self) -> str:
        return "AcsAuth(access_key=<hidden>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # Re-signed on every send, so a retried read carries a fresh x-ms-date.
        request.headers.update(signing_headers(self._key, request.method, request.url, request.content, self._now()))
        yield request


def parse_connection_string(connection_string: str) -> tuple[str, str]:
    """``endpoint=https://<resource>.communication.azure.com/;accesskey=<base64>`` → (endpoint, key).

    Names are case-insensitive and the key may itself end in ``=``. Errors say
    which part is wrong without repeating any of the string.
    """
    parts: dict[str, str] = {}
    for piece in (connection_string or "").split(";"):
        if not piece.strip():
            continue
        name, sep, value = piece.partition("=")
        if not sep:
            raise ConfigError(["ACS_CONNECTION_STRING is not of the form endpoint=https://…;accesskey=…"])
        parts[name.strip().lower()] = value.strip()
    problems = []
    endpoint = parts.get("endpoint", "")
    key = parts.get("accesskey", "")
    if not endpoint:
        problems.append("ACS_CONNECTION_STRING has no endpoint=https://<resource>.communication.azure.com/ part")
    elif not re.match(r"^https?://[^/\s]+", endpoint):
        problems.append("ACS_CONNECTION_STRING endpoint must start with https:// and name a host")
    if not key:
        problems.append("ACS_CONNECTION_STRING has no accesskey=… part (Azure portal → your resource → Keys)")
    if problems:
        raise ConfigError(problems)
    decode_access_key(key)
    return endpoint, key
