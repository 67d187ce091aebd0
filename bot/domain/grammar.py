"""The ``/numbers`` command grammar (README, "The flow in Slack"): the one parser of Slack's command,
the search form (``search_fields``) and the CLI.

``parse(text)`` returns a ``Command`` or raises ``UsageError`` whose message says
exactly what was wrong and whose ``usage`` is the help text. It never raises
anything else, whatever the input (a property test holds it to that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import phonenumbers

from bot.domain.errors import UsageError
from bot.domain.offers import NUMBER_TYPES, SearchQuery

SEARCH_PROVIDERS = ("acs", "plivo", "twilio", "telnyx")
MAX_TEXT = 500
MAX_REASON = 3000  # a justification, a deny or release reason: the longest free text anyone types

USAGE = """\
*Usage* — `/numbers <verb> …`
• `/numbers` or `/numbers search` — open the search form
• `/numbers search <CC> [local|tollfree|national] [<area code or prefix>] [x<N>] [sms] [voice] [via acs|plivo|twilio|telnyx]`
   e.g. `/numbers search US tollfree 833 x2 sms`, `/numbers search GB local 20 via plivo`, `/numbers search US local 415 via twilio`
• `/numbers assign [<location>]` — Webex numbers you can take as your primary number
• `/numbers mine` — your requests
• `/numbers pending` — requests waiting for a decision (approvers)
• `/numbers show <request id>` — one request and its history
• `/numbers cancel <request id>` — withdraw your pending request
• `/numbers audit [<days>]` — CSV of every event (approvers; default 30 days)
• `/numbers inventory` — the numbers the team holds, with monthly totals
• `/numbers release <number>` — ask to give a number back (its owner or an approver)
• `/numbers costs` — monthly cost by provider and requester, and the budget left
• `/numbers help` — this text"""

TYPE_WORDS = {
    "local": "local",
    "geographic": "local",
    "tollfree": "tollfree",
    "toll-free": "tollfree",
    "national": "national",
}

# [0-9], never \d: \d is any Unicode digit (٨٣٣), which no provider reads as an area code.
_REQUEST_ID = re.compile(r"^#?(?:r-?)?([0-9]{1,12})$", re.I)
_QUANTITY = re.compile(r"^x([0-9]{1,6})$", re.I)


@dataclass(frozen=True)
class Command:
    verb: str  # search-form | search | assign | mine | pending | show | cancel | audit | help | inventory | release | costs
    query: SearchQuery | None = None
    request_id: int | None = None
    days: int | None = None
    location: str | None = None
    number: str | None = None


def usage_error(message: str) -> UsageError:
    return UsageError(message, usage=USAGE)


def reason_problem(text: str, what: str = "reason") -> str | None:
    """What is wrong with a free-text reason, or None: it must say something and stay under ``MAX_REASON``."""
    if not text or not text.strip():
        return f"The {what} is empty; say why."
    if len(text) > MAX_REASON:
        return f"The {what} is {len(text)} characters; at most {MAX_REASON}."
    return None


def parse_request_id(word: str | None, verb: str) -> int:
    if not word:
        raise usage_error(f"`{verb}` needs a request id, e.g. `/numbers {verb} 42`.")
    m = _REQUEST_ID.match(word.strip())
    if not m:
        raise usage_error(f"`{word}` is not a request id; request ids are numbers, e.g. `/numbers {verb} 42`.")
    return int(m.group(1))


# --- the fields of a search: one reader each, shared by ``/numbers search`` and the search form ---


def read_country(word: str) -> str:
    country = word.strip().upper()
    if not country:
        raise usage_error("Give a two-letter country code (ISO 3166), e.g. US, GB, DE.")
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise usage_error(f"`{word}` is not a two-letter country code (ISO 3166), e.g. US, GB, DE.")
    if country not in phonenumbers.SUPPORTED_REGIONS:
        raise usage_error(f"`{country}` is not a country code I know (ISO 3166 two letters, e.g. US, GB, DE).")
    return country


def read_number_type(word: str) -> str:
    low = word.strip().lower()
    if low not in TYPE_WORDS:
        raise usage_error(f"`{word}` is not a number type; use local, tollfree or national.")
    return TYPE_WORDS[low]


def read_prefix(word: str) -> str:
    if not re.fullmatch(r"\+?[0-9]+", word):  # ASCII: \d is any Unicode digit
        raise usage_error(f"`{word}` is not an area code or prefix: digits only, e.g. 206 or 833.")
    digits = word.lstrip("+")
    if len(digits) > 6:
        raise usage_error(f"`{word}` is too long for an area code or prefix (at most 6 digits).")
    return digits


def read_quantity(digits: str, maximum: int | None = None) -> int:
    """A whole number of numbers; ``maximum`` (NUMBERS_MAX_QUANTITY) where the reader knows it."""
    if not re.fullmatch(r"[0-9]{1,6}", digits):
        raise usage_error(f"`{digits}` is not a quantity; give a whole number, e.g. 2.")
    quantity = int(digits)
    if quantity < 1:
        raise usage_error("Quantity must be at least 1 (`x1`).")
    if maximum is not None and quantity > maximum:
        raise usage_error(f"A whole number from 1 to {maximum} (NUMBERS_MAX_QUANTITY).")
    return quantity


def read_provider(word: str) -> str:
    name = word.strip().lower()
    if name not in SEARCH_PROVIDERS:
        hint = " (Webex numbers are listed with `/numbers assign`)" if name == "webex" else ""
        raise usage_error(f"`{word}` is not a provider I can search; use `acs`, `plivo`, `twilio` or `telnyx`{hint}.")
    return name


def search_fields(
    *,
    country: str,
    number_type: str | None = None,
    prefix: str | None = None,
    quantity: str | None = None,
    sms: bool = False,
    voice: bool = False,
    provider: str | None = None,
    max_quantity: int | None = None,
) -> tuple[SearchQuery | None, dict[str, str]]:
    """A search given field by field (the search form): the query, or what is wrong with each field.

    The keys of the problems are the field names (``country``, ``number_type``, ``prefix``,
    ``quantity``, ``provider``); every field is read by the same reader ``/numbers search`` uses."""
    readers: dict[str, tuple[Any, str | None]] = {
        "country": (read_country, country),
        "number_type": (read_number_type, number_type),
        "prefix": (read_prefix, prefix),
        "quantity": (lambda text: read_quantity(text, max_quantity), quantity),
        "provider": (read_provider, provider),
    }
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name, (reader, text) in readers.items():
        if (text is None or text == "") and name != "country":  # the country is required, the rest optional
            continue
        try:
            values[name] = reader(text or "")
        except UsageError as exc:
            problems[name] = str(exc)
    if problems:
        return None, problems
    return SearchQuery(
        country=values["country"],
        number_type=values.get("number_type", "local"),
        prefix=values.get("prefix"),
        quantity=values.get("quantity", 1),
        sms=sms,
        voice=voice,
        provider=values.get("provider"),
    ), {}


def parse_search(words: list[str]) -> SearchQuery:
    if not words:
        raise usage_error("`search` needs a country code, e.g. `/numbers search US tollfree`.")
    country = read_country(words[0])
    number_type: str | None = None
    prefix: str | None = None
    quantity: int | None = None
    sms = voice = False
    provider: str | None = None
    i = 1
    while i < len(words):
        word = words[i]
        low = word.lower()
        if low in TYPE_WORDS:
            if number_type is not None:
                raise usage_error(f"Give one number type, not `{number_type}` and `{low}`.")
            number_type = read_number_type(low)
        elif re.fullmatch(r"\+?[0-9]+", word):
            if prefix is not None:
                raise usage_error(f"Give one area code or prefix, not `{prefix}` and `{word}`.")
            prefix = read_prefix(word)
        elif m := _QUANTITY.match(word):
            if quantity is not None:
                raise usage_error("Give the quantity once, e.g. `x2`.")
            quantity = read_quantity(m.group(1))
        elif low == "sms":
            sms = True
        elif low == "voice":
            voice = True
        elif low == "via":
            if i + 1 >= len(words):
                raise usage_error("`via` needs a provider: `via acs`, `via plivo`, `via twilio` or `via telnyx`.")
            provider = read_provider(words[i + 1])
            i += 1
        elif re.fullmatch(r"x\S*", low):
            raise usage_error(f"`{word}` is not a quantity; write it as `x2` (a whole number after x).")
        else:
            raise usage_error(
                f"I don't understand `{word}` in the search. Expected a number type (local, tollfree, national), "
                "an area code or prefix (digits), a quantity (x2), sms, voice, or via acs|plivo|twilio|telnyx."
            )
        i += 1
    return SearchQuery(
        country=country,
        number_type=number_type or "local",
        prefix=prefix,
        quantity=quantity or 1,
        sms=sms,
        voice=voice,
        provider=provider,
    )


def parse(text: str | None) -> Command:
    """Parse the text after ``/numbers``."""
    text = (text or "").replace("\u00a0", " ").strip()
    if len(text) > MAX_TEXT:
        raise usage_error(f"That command is {len(text)} characters long; commands are at most {MAX_TEXT}.")
    if any(ord(c) < 32 and c not in "\t\n" for c in text):
        raise usage_error("The command contains control characters; type it again as plain text.")
    words = text.split()
    if not words:
        return Command("search-form")
    verb, rest = words[0].lower(), words[1:]
    if verb == "search":
        if not rest:
            return Command("search-form")
        return Command("search", query=parse_search(rest))
    if verb == "assign":
        location = " ".join(rest) or None
        return Command("assign", location=location)
    if verb == "release":
        number = " ".join(rest)
        if not number:
            raise usage_error("`release` needs the number, e.g. `/numbers release +18332272459`.")
        if not re.fullmatch(r"\+?[0-9\s().-]{6,24}", number) or len(re.sub(r"[^0-9]", "", number)) < 6:
            raise usage_error(f"`{number}` is not a phone number; write it like +18332272459 or (833) 227-2459.")
        # Without a +, the number is read later against the inventory, in its national form.
        digits = re.sub(r"[^0-9]", "", number)
        return Command("release", number=("+" + digits) if number.startswith("+") else digits)
    if verb in ("mine", "pending", "help", "inventory", "costs"):
        if rest:
            raise usage_error(f"`{verb}` takes nothing after it (got `{' '.join(rest)}`).")
        return Command(verb)
    if verb in ("show", "cancel"):
        if len(rest) > 1:
            raise usage_error(f"`{verb}` takes one request id (got `{' '.join(rest)}`).")
        return Command(verb, request_id=parse_request_id(rest[0] if rest else None, verb))
    if verb == "audit":
        if len(rest) > 1:
            raise usage_error(f"`audit` takes at most a number of days (got `{' '.join(rest)}`).")
        days = 30
        if rest:
            if not re.fullmatch(r"[0-9]{1,4}", rest[0]) or not 1 <= int(rest[0]) <= 3660:
                raise usage_error(f"`{rest[0]}` is not a number of days between 1 and 3660, e.g. `/numbers audit 7`.")
            days = int(rest[0])
        return Command("audit", days=days)
    if re.fullmatch(r"[A-Za-z]{2}", verb) and verb.upper() in phonenumbers.SUPPORTED_REGIONS:
        raise usage_error(f"Did you mean `/numbers search {text}`? Searches start with `search`.")
    raise usage_error(f"`{words[0]}` is not something I can do.")


NUMBER_TYPE_LABELS = {"local": "local", "tollfree": "toll-free", "national": "national"}
assert set(NUMBER_TYPE_LABELS) == set(NUMBER_TYPES)
