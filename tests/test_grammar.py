"""The /numbers grammar: what it understands, and a precise message for everything else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from bot.domain.grammar import USAGE, Command, parse
from bot.domain.errors import UsageError
from bot.domain.offers import SearchQuery


@pytest.mark.parametrize(
    "text,expected",
    [
        ("", Command("search-form")),
        ("   ", Command("search-form")),
        ("search", Command("search-form")),
        ("SEARCH", Command("search-form")),
        ("search US tollfree 833 x2 sms", Command("search", query=SearchQuery("US", "tollfree", "833", 2, sms=True))),
        ("search us", Command("search", query=SearchQuery("US"))),
        ("search GB local 20 via plivo", Command("search", query=SearchQuery("GB", "local", "20", provider="plivo"))),
        ("search US 206 voice sms", Command("search", query=SearchQuery("US", "local", "206", sms=True, voice=True))),
        ("search US toll-free", Command("search", query=SearchQuery("US", "tollfree"))),
        ("search DE national x3", Command("search", query=SearchQuery("DE", "national", quantity=3))),
        ("search US tollfree via ACS", Command("search", query=SearchQuery("US", "tollfree", provider="acs"))),
        ("search US +1", Command("search", query=SearchQuery("US", prefix="1"))),
        ("assign", Command("assign")),
        ("assign San Jose", Command("assign", location="San Jose")),
        ("mine", Command("mine")),
        ("pending", Command("pending")),
        ("help", Command("help")),
        ("show 42", Command("show", request_id=42)),
        ("show #42", Command("show", request_id=42)),
        ("cancel 7", Command("cancel", request_id=7)),
        ("audit", Command("audit", days=30)),
        ("audit 7", Command("audit", days=7)),
        ("inventory", Command("inventory")),
        ("costs", Command("costs")),
        ("release +1 (833) 227-2459", Command("release", number="+18332272459")),
        ("release 18332272459", Command("release", number="18332272459")),  # read against the inventory
        ("release (415) 243-7047", Command("release", number="4152437047")),
    ],
)
def test_understood(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text,says",
    [
        ("buy US", "`buy` is not something I can do"),
        ("US tollfree", "Did you mean `/numbers search US tollfree`"),
        ("search", None),
        ("search USA", "not a two-letter country code"),
        ("search XX", "not a country code I know"),
        ("search US tollfree local", "one number type"),
        ("search US 206 415", "one area code or prefix"),
        ("search US 1234567", "too long"),
        ("search US x0", "at least 1"),
        ("search US xx", "not a quantity"),
        ("search US x2 x3", "quantity once"),
        ("search US via", "`via` needs a provider"),
        ("search US via sinch", "not a provider I can search"),
        ("search US via webex", "/numbers assign"),
        ("search US cheap", "I don't understand `cheap`"),
        ("show", "needs a request id"),
        ("show abc", "not a request id"),
        ("show 1 2", "one request id"),
        ("cancel", "needs a request id"),
        ("audit 0", "not a number of days"),
        ("audit lots", "not a number of days"),
        ("mine please", "takes nothing after it"),
        ("release", "needs the number"),
        ("release my-number", "not a phone number"),
        ("release 12", "not a phone number"),
        ("search US\x07", "control characters"),
        ("x" * 600, "at most 500"),
    ],
)
def test_refused_with_a_precise_message(text, says):
    if says is None:
        assert parse(text).verb == "search-form"
        return
    with pytest.raises(UsageError) as info:
        parse(text)
    assert says in str(info.value)
    assert info.value.usage == USAGE


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=120))
def test_any_text_parses_or_gets_a_usage_error(text):
    try:
        command = parse(text)
    except UsageError as exc:
        assert str(exc)
        assert exc.usage == USAGE
    else:
        assert command.verb in {
            "search-form", "search", "assign", "mine", "pending", "show", "cancel", "audit", "help", "inventory",
            "release", "costs",
        }


WORDS = st.sampled_from(
    ["search", "US", "GB", "tollfree", "local", "national", "833", "x2", "x", "sms", "voice", "via", "acs", "plivo",
     "webex", "show", "42", "#1", "cancel", "audit", "7", "assign", "London", "mine", "-1", "x99999999"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(WORDS, max_size=8))
def test_near_miss_word_salad_never_crashes(words):
    try:
        parse(" ".join(words))
    except UsageError:
        pass


# --- the search form reads its fields with the same readers --------------------------------------


def test_the_search_form_and_the_command_build_the_same_query():
    from bot.domain.grammar import search_fields

    typed = parse("search us toll-free +833 x2 sms voice via ACS").query
    query, problems = search_fields(
        country="us", number_type="toll-free", prefix="833", quantity="2", sms=True, voice=True, provider="ACS", max_quantity=10
    )
    assert problems == {} and query == typed


@pytest.mark.parametrize(
    "field, value, command",
    [
        ("country", "ZZ", "search ZZ"),
        ("country", "USA", "search USA"),
        ("prefix", "1234567", "search US 1234567"),
        ("quantity", "0", "search US x0"),
        ("provider", "sinch", "search US via sinch"),
        ("provider", "webex", "search US via webex"),
    ],
)
def test_the_search_form_says_what_the_command_says(field, value, command):
    """One reader per field: the form's error is the command's, word for word."""
    from bot.domain.grammar import search_fields

    fields = {"country": "US", field: value}
    _, problems = search_fields(**fields, max_quantity=10)
    with pytest.raises(UsageError) as typed:
        parse(command)
    assert problems == {field: str(typed.value)}


def test_the_search_form_reports_every_bad_field_at_once():
    from bot.domain.grammar import search_fields

    query, problems = search_fields(country="ZZ", prefix="8x3", quantity="99", number_type="mobile", max_quantity=10)
    assert query is None and set(problems) == {"country", "prefix", "quantity", "number_type"}
    assert problems["quantity"] == "A whole number from 1 to 10 (NUMBERS_MAX_QUANTITY)."
    assert search_fields(country="")[1] == {"country": "Give a two-letter country code (ISO 3166), e.g. US, GB, DE."}
