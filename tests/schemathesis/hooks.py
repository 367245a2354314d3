"""Schemathesis hooks for provider-desk's GraphQL endpoint.

Schemathesis's own `not_a_server_error` check for GraphQL trusts only Apollo's client-error codes
(BAD_USER_INPUT, ...): an error with a `path` and any other code counts as a server error. This
project's conventions give every refusal a code of its own (UNAUTHENTICATED, FORBIDDEN, NOT_FOUND,
CONFLICT, RATE_LIMITED), so that heuristic would call "ticket not found" a server failure. This
check applies the project's definition instead: a server error is an HTTP 5xx, or a GraphQL error
whose code is INTERNAL or UNAVAILABLE, or that has no code at all.
"""

import schemathesis

CLIENT_CODES = {"BAD_USER_INPUT", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "CONFLICT", "RATE_LIMITED"}


@schemathesis.check
def no_server_error(ctx, response, case):
    """No 5xx, and no GraphQL error that is not one of the documented client errors."""
    if response.status_code >= 500:
        raise AssertionError(f"HTTP {response.status_code}: {response.text[:500]}")
    try:
        payload = response.json()
    except ValueError:
        raise AssertionError(f"not JSON: {response.text[:500]}")
    payloads = payload if isinstance(payload, list) else [payload]
    for item in payloads:
        for error in (item or {}).get("errors") or []:
            code = (error.get("extensions") or {}).get("code")
            if code not in CLIENT_CODES:
                raise AssertionError(f"a server error (code {code!r}): {error}")
