"""Schemathesis hooks for the fuzz run of docs/openapi.yaml (tests/openapi.rs).

Loaded through `hooks` in tests/schemathesis.toml. Environment:

- OPENAPI_FUZZ_API_KEY: set when the component is served with `api_key`. The document is
  then fuzzed as that deployment describes it: the bearer key is required, and the
  fuzzer, which does not know the key, must get 401 on every POST whose path parses.
- OPENAPI_FUZZ_SUMMARY: a file to write the run's figures to, as JSON: responses per
  operation and outcome (status, error text, replay). They are also printed.
"""

import atexit
import collections
import json
import os
import re

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

KEY_REUSED = "Idempotency-Key was already used for a different request"
GENERATED_REQUEST_ID = re.compile(r"[0-9a-f]{32}")
USABLE_REQUEST_ID = re.compile(r"[!-~]{1,128}")

API_KEY = os.environ.get("OPENAPI_FUZZ_API_KEY")
SUMMARY = os.environ.get("OPENAPI_FUZZ_SUMMARY")

outcomes = collections.defaultdict(collections.Counter)


@schemathesis.hook
def before_load_schema(context, raw_schema):
    # The document makes the key optional (`{}`), as it is by default; a deployment with a
    # key requires it, and only then can `ignored_auth` tell whether it is enforced.
    if API_KEY:
        raw_schema["security"] = [{"bearerAuth": []}]


@schemathesis.hook
def after_call(context, case, response):
    outcome = str(response.status_code)
    error = _error(response)
    if error:
        outcome += f" {error}"
    elif _answered_by_spin(response):
        outcome += " from Spin: a header value is not UTF-8"
    if response.headers.get("idempotent-replayed"):
        outcome += " replayed"
    outcomes[case.operation.label][outcome] += 1


def _summarize():
    print("\nResponses per operation:")
    for operation in sorted(outcomes):
        counts = outcomes[operation]
        print(f"  {operation}: {sum(counts.values())}")
        for outcome, count in sorted(counts.items()):
            print(f"    {count:6}  {outcome}")
    if SUMMARY:
        with open(SUMMARY, "w") as out:
            json.dump({op: dict(counts) for op, counts in outcomes.items()}, out)


atexit.register(_summarize)


def _error(response):
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps every failure but those of a request Spin answered itself.

    Spin hands the component only header values that are UTF-8 and answers any other
    request with an empty 500 before the service runs (docs/openapi.yaml, "Requests Spin
    answers itself"; tests/contract.rs pins that such a request takes nothing). The
    fuzzer writes header text in Latin-1, so any non-ASCII character it draws makes one.
    That answer is the platform's, outside what the description promises of the service:
    its failures are dropped, and only when the request carried such a header and the
    answer is exactly Spin's. The summary counts them.
    """
    return not _answered_by_spin(response)


def _answered_by_spin(response):
    return (
        response.status_code == 500
        and not response.content
        and "content-type" not in response.headers
        and any(not _is_utf8(value) for value in response.request.headers.values())
    )


def _is_utf8(value):
    # What went on the wire: requests writes a text header value in Latin-1.
    raw = value if isinstance(value, bytes) else value.encode("latin-1")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@schemathesis.check
def positive_data_accepted_unless_key_reused(ctx, response, case):
    """`positive_data_acceptance`, except for a key an earlier case used differently.

    A schema-valid `Idempotency-Key` the fuzzer already sent with another request is
    rightly 422: that depends on the run's history, not on this request. Any other 4xx
    to schema-valid data is still a failure (a blank-body rule or a limit that the
    description gets wrong, for instance).
    """
    if response.status_code == 422 and _error(response) == KEY_REUSED:
        return None
    return positive_data_acceptance(ctx, response, case)


@schemathesis.check
def request_id_is_echoed_or_generated(ctx, response, case):
    """A usable `X-Request-Id` comes back unchanged; any other gets a fresh 32-hex id."""
    answered = response.headers.get("x-request-id")
    assert answered, "no X-Request-Id in the response"
    answered = answered[0]
    sent = response.request.headers.get("X-Request-Id")
    if isinstance(sent, bytes):
        sent = sent.decode("latin-1")
    # HTTP drops the whitespace around a header value before the component sees it.
    if sent is not None:
        sent = sent.strip(" \t")
    if sent is not None and USABLE_REQUEST_ID.fullmatch(sent):
        assert answered == sent, f"sent X-Request-Id {sent!r}, got {answered!r}"
    else:
        assert GENERATED_REQUEST_ID.fullmatch(answered), (
            f"sent X-Request-Id {sent!r}, got {answered!r} instead of a generated id"
        )
