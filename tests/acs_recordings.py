"""Recorded ACS Phone Numbers traffic, replayed through ``httpx.MockTransport``.

Taken from Azure/azure-sdk-for-python,
``sdk/communication/azure-communication-phonenumbers/test/recordings/``:

* ``RECORDING_2021``: ``test_phone_number_administration_client.test_purchase_phone_numbers.yaml``
  (Feb 2021, api-version 2021-03-07): only a lower-case ``operation-location``
  header, no ``Location``/``operation-id``/``search-id``, capitalised values,
  ``cost: null``, ``resourceLocation: null`` even for the search, 7 fractional
  digits, and a release answered ``204``.
* ``RECORDING_2022``: ``…pyTestPhoneNumbersClienttest_purchase_phone_numbers.json``
  (Dec 2022, api-version 2022-01-11-preview2): full headers in mixed letter
  case, lower camel values, ``cost`` present, operation ``id`` sanitised, and
  a purchase that polled ``running, running, notStarted × 8, succeeded``.
* ``RECORDING_BAD_COUNTRY``: ``…test_search_available_phone_numbers_with_invalid_country_code.yaml``.

Responses are verbatim except: numbers the recorder sanitised (``+sanitized``)
are replaced by fictional ones, hop-by-hop headers (``Transfer-Encoding``)
and noise headers (``X-Azure-Ref``, ``MS-CV``…) are dropped, and the SDK's
extra GET of the search result after purchasing is left out because our client
does not make it. Requests are given as *our* client sends them: its own calls
at api-version 2021-03-07, followed ``Location``s verbatim (the 2022 ones
keep ``2022-01-11-preview2``).
"""

from __future__ import annotations

from typing import Any

SEARCH_ID_2021 = "b8db86ec-476d-44c4-811d-303928c645bc"
NUMBER_2021 = "+18332272459"
RELEASE_ID_2021 = "5e40cad0-cbab-451b-9aab-08f0b81fb814"

SEARCH_ID_2022 = "8c02bbe5-42c9-46f3-bcda-56bc547f1dee"
NUMBER_2022 = "+18445550182"  # recorded as "+sanitized"
RELEASE_ID_2022 = "e123ecab-64c7-4fd3-96cf-f28a331b603f"
PREVIEW = "2022-01-11-preview2"

_JSON_2021 = [("content-type", "application/json; charset=utf-8")]
_JSON_2022 = [("Content-Type", "application/json; charset=utf-8")]


def _exchange(method: str, path: str, status: int, headers: list[tuple[str, str]], body: Any = None, *,
              request_json: Any = None) -> dict[str, Any]:
    return {"method": method, "path": path, "status": status, "headers": headers, "body": body,
            "request_json": request_json}


def _operation_2021(operation_id: str, operation_type: str) -> dict[str, Any]:
    return {
        "status": "Succeeded",
        "resourceLocation": None,
        "createdDateTime": "2021-02-09T23:12:41.0837738+00:00",
        "id": operation_id,
        "operationType": operation_type,
        "lastActionDateTime": "0001-01-01T00:00:00+00:00",
    }


def _search_result_2021() -> dict[str, Any]:
    return {
        "searchId": SEARCH_ID_2021,
        "phoneNumbers": [NUMBER_2021],
        "phoneNumberType": "TollFree",
        "assignmentType": "Application",
        "capabilities": {"calling": "inbound", "sms": "inbound+outbound"},
        "cost": None,
        "searchExpiresBy": "2021-02-09T23:28:47.6393852+00:00",
    }


def recording_2021(search_body: dict[str, Any]) -> list[dict[str, Any]]:
    """``search_body``: what our client sends for the test's query (the SDK's differed)."""
    return [
        _exchange(
            "POST", "/availablePhoneNumbers/countries/US/:search?api-version=2021-03-07", 202,
            [("content-length", "0"), ("date", "Tue, 09 Feb 2021 23:12:41 GMT"),
             ("operation-location", f"/phoneNumbers/operations/search_{SEARCH_ID_2021}?api-version=2021-03-07"),
             ("x-processing-time", "1604ms")],
            None, request_json=search_body,
        ),
        _exchange(
            "GET", f"/phoneNumbers/operations/search_{SEARCH_ID_2021}?api-version=2021-03-07", 200, _JSON_2021,
            _operation_2021(f"search_{SEARCH_ID_2021}", "Search"),
        ),
        _exchange(
            "GET", f"/availablePhoneNumbers/searchResults/{SEARCH_ID_2021}?api-version=2021-03-07", 200, _JSON_2021,
            _search_result_2021(),
        ),
        _exchange(
            "POST", "/availablePhoneNumbers/:purchase?api-version=2021-03-07", 202,
            [("content-length", "0"), ("date", "Tue, 09 Feb 2021 23:13:13 GMT"),
             ("operation-location", f"/phoneNumbers/operations/purchase_{SEARCH_ID_2021}?api-version=2021-03-07"),
             ("x-processing-time", "1144ms")],
            None, request_json={"searchId": SEARCH_ID_2021},
        ),
        _exchange(
            "GET", f"/phoneNumbers/operations/purchase_{SEARCH_ID_2021}?api-version=2021-03-07", 200, _JSON_2021,
            _operation_2021(f"purchase_{SEARCH_ID_2021}", "Purchase"),
        ),
        _exchange(
            "DELETE", "/phoneNumbers/%2B18332272459?api-version=2021-03-07", 204,
            [("date", "Tue, 09 Feb 2021 23:13:46 GMT"),
             ("operation-location", f"/phoneNumbers/operations/release_{RELEASE_ID_2021}?api-version=2021-03-07"),
             ("x-processing-time", "934ms")],
            None,
        ),
    ]


def _operation_2022(operation_type: str, status: str, created: str, resource_location: str | None) -> dict[str, Any]:
    return {
        "operationType": operation_type,
        "status": status,
        "resourceLocation": resource_location,
        "createdDateTime": created,
        "id": "sanitized",
        "lastActionDateTime": "0001-01-01T00:00:00+00:00",
    }


# The statuses of the purchase operation, poll by poll, as recorded.
PURCHASE_STATUSES_2022 = ["running", "running"] + ["notStarted"] * 8 + ["succeeded"]
RELEASE_STATUSES_2022 = ["running", "running", "succeeded"]


def recording_2022(search_body: dict[str, Any]) -> list[dict[str, Any]]:
    results = f"/availablePhoneNumbers/searchResults/{SEARCH_ID_2022}?api-version={PREVIEW}"
    search_op = f"/phoneNumbers/operations/search_{SEARCH_ID_2022}?api-version={PREVIEW}"
    purchase_op = f"/phoneNumbers/operations/purchase_{SEARCH_ID_2022}?api-version={PREVIEW}"
    release_op = f"/phoneNumbers/operations/release_{RELEASE_ID_2022}?api-version={PREVIEW}"
    created = "2022-12-08T23:09:35.0722187+00:00"
    exchanges = [
        _exchange(
            "POST", "/availablePhoneNumbers/countries/US/:search?api-version=2021-03-07", 202,
            [("Access-Control-Expose-Headers", "Location,Operation-Location,operation-id,search-id"),
             ("api-supported-versions", "2021-03-07, 2022-01-11-preview2, 2022-06-01-preview, 2022-12-01"),
             ("Content-Length", "0"), ("Date", "Thu, 08 Dec 2022 23:09:34 GMT"),
             ("Location", results), ("operation-id", f"search_{SEARCH_ID_2022}"),
             ("Operation-Location", search_op), ("search-id", SEARCH_ID_2022)],
            None, request_json=search_body,
        ),
    ]
    for status in ("notStarted", "succeeded"):
        exchanges.append(_exchange(
            "GET", search_op, 200,
            [("Access-Control-Expose-Headers", "Location"), ("Location", results), *_JSON_2022],
            _operation_2022("search", status, created, results),
        ))
    exchanges.append(_exchange(
        "GET", results, 200, _JSON_2022,
        {
            "searchId": SEARCH_ID_2022,
            "phoneNumbers": [NUMBER_2022],
            "phoneNumberType": "tollFree",
            "assignmentType": "application",
            "capabilities": {"calling": "inbound", "sms": "inbound+outbound"},
            "cost": {"amount": 2.0, "currencyCode": "USD", "billingFrequency": "monthly"},
            "searchExpiresBy": "2022-12-08T23:25:37.1991858+00:00",
        },
    ))
    exchanges.append(_exchange(
        "POST", "/availablePhoneNumbers/:purchase?api-version=2021-03-07", 202,
        [("Access-Control-Expose-Headers", "Operation-Location,operation-id,purchase-id"),
         ("Content-Length", "0"), ("Date", "Thu, 08 Dec 2022 23:09:40 GMT"),
         ("operation-id", f"purchase_{SEARCH_ID_2022}"), ("Operation-Location", purchase_op),
         ("purchase-id", SEARCH_ID_2022)],
        None, request_json={"searchId": SEARCH_ID_2022},
    ))
    for status in PURCHASE_STATUSES_2022:
        exchanges.append(
            _exchange("GET", purchase_op, 200, _JSON_2022, _operation_2022("purchase", status, created, None))
        )
    exchanges.append(_exchange(
        "DELETE", "/phoneNumbers/%2B18445550182?api-version=2021-03-07", 202,
        [("Access-Control-Expose-Headers", "Operation-Location,operation-id,release-id"),
         ("Content-Length", "0"), ("Date", "Thu, 08 Dec 2022 23:10:08 GMT"),
         ("operation-id", f"release_{RELEASE_ID_2022}"), ("Operation-Location", release_op),
         ("release-id", RELEASE_ID_2022)],
        None,
    ))
    for status in RELEASE_STATUSES_2022:
        exchanges.append(_exchange(
            "GET", release_op, 200, _JSON_2022,
            _operation_2022("releasePhoneNumber", status, "2022-12-08T23:10:07.5909422+00:00", None),
        ))
    return exchanges


def recording_bad_country(search_body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _exchange(
            "POST", "/availablePhoneNumbers/countries/XX/:search?api-version=2021-03-07", 400,
            [("api-supported-versions", "2021-03-07, 2022-01-11-preview"), ("content-type", "application/json"),
             ("date", "Wed, 05 Jan 2022 09:54:20 GMT")],
            {"error": {"code": "InvalidInput", "message": "Unable to parse country code.", "target": "countrycode"}},
            request_json=search_body,
        ),
    ]
