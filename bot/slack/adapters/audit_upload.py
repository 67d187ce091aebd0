"""The audit CSV to Slack as a file, streamed: never the whole CSV in memory, never a long stall.

``files_upload_v2`` takes the content as one ``bytes``; 124,000 events made that a 210 MB peak
and a 2.25 s stall of the event loop. Here the CSV goes from the store to a temporary file in
64 kB chunks, each read from the store on a thread (``NumbersService.audit_csv`` reads the store
in batches), and the file goes to Slack through the three calls ``files_upload_v2`` makes
itself: ``files.getUploadURLExternal`` (which needs the length first, hence the file),
a POST of the bytes to the upload URL, streamed from the file, and
``files.completeUploadExternal`` to share it in the channel.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import tempfile
from dataclasses import dataclass
from typing import IO, Any, AsyncIterator, Iterator

import httpx
from slack_sdk.errors import SlackApiError

from bot.slack.api_errors import slack_error

__all__ = ["SpooledCsv", "send_to_dm", "spool_csv", "upload_file"]

log = logging.getLogger(__name__)

CHUNK = 64 * 1024


@dataclass
class SpooledCsv:
    file: IO[bytes]
    size: int
    rows: int  # data rows, the header not counted


async def spool_csv(chunks: Iterator[str]) -> SpooledCsv:
    """Write CSV text chunks (each ending at a row boundary) to a temporary file; count bytes and rows."""
    file = tempfile.TemporaryFile()
    size = rows = 0
    try:
        while True:
            # Each chunk is read from the store on a thread: SQLite never runs on the event loop.
            chunk = await asyncio.to_thread(next, chunks, None)
            if chunk is None:
                break
            data = chunk.encode("utf-8")
            await asyncio.to_thread(file.write, data)
            size += len(data)
            rows += sum(1 for _ in csv.reader(io.StringIO(chunk)))
    except BaseException:
        file.close()
        raise
    file.seek(0)
    return SpooledCsv(file, size, max(0, rows - 1))


async def _read_chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    while True:
        data = await asyncio.to_thread(file.read, CHUNK)
        if not data:
            return
        yield data


async def upload_file(
    client: Any, spooled: SpooledCsv, *, channel: str, filename: str, title: str, initial_comment: str
) -> None:
    """``files.getUploadURLExternal`` → POST the bytes, streamed → ``files.completeUploadExternal``.

    Raises ``SlackApiError`` from the Web API calls, ``httpx.HTTPError`` from the upload itself."""
    ticket = await client.files_getUploadURLExternal(filename=filename, length=spooled.size)
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.post(
            ticket["upload_url"],
            content=_read_chunks(spooled.file),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(spooled.size)},
        )
        response.raise_for_status()
    await client.files_completeUploadExternal(
        files=[{"id": ticket["file_id"], "title": title}], channel_id=channel, initial_comment=initial_comment
    )


async def send_to_dm(client: Any, user: str, spooled: SpooledCsv, *, filename: str, title: str, initial_comment: str) -> str | None:
    """The spooled CSV as a file in ``user``'s DM with the bot; None when sent, else what to tell the user.

    The file is closed either way."""
    try:
        opened = await client.conversations_open(users=user)
        await upload_file(
            client, spooled, channel=opened["channel"]["id"], filename=filename, title=title, initial_comment=initial_comment
        )
    except httpx.HTTPError as exc:
        log.error("audit upload for %s failed: %s", user, type(exc).__name__)
        return ":warning: The audit file could not be sent to Slack; try again later."
    except SlackApiError as exc:
        log.error("audit upload for %s failed: %s", user, slack_error(exc))
        return f":warning: Slack refused the audit file ({slack_error(exc)}); try again later."
    finally:
        spooled.file.close()
    return None
