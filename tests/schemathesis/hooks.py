"""Schemathesis hooks for provider-desk: a server-error check for the GraphQL endpoint, and the
REST rules the OpenAPI document states only in words.

The REST rules: a JSON Schema constrains each parameter on its own, so the rules that tie
parameters together or depend on stored data are in the operations' descriptions instead, and
`map_case` keeps the requests schemathesis means to be valid within them (invalid ones are left
alone, so the server's refusals are still tested):
- a chat history cursor (`before`/`after`) must name a message of that conversation (no generated
  id does), so a valid request carries none;
- the inbox's `after` excludes any page but the first, so a valid request with it asks for page 1;
- a password is at most 72 bytes of UTF-8 (bcrypt's limit); the document's `maxLength` counts
  characters, so a valid password is cut to 72 bytes;
- a write's `Idempotency-Key` names that write: a key used before answers the first write again
  (a canned reply created and since deleted, say), so each valid write gets a key of its own.

The GraphQL check:

Schemathesis's own `not_a_server_error` check for GraphQL trusts only Apollo's client-error codes
(BAD_USER_INPUT, ...): an error with a `path` and any other code counts as a server error. This
project's conventions give every refusal a code of its own (UNAUTHENTICATED, FORBIDDEN, NOT_FOUND,
CONFLICT, RATE_LIMITED), so that heuristic would call "ticket not found" a server failure. This
check applies the project's definition instead: a server error is an HTTP 5xx, or a GraphQL error
whose code is INTERNAL or UNAVAILABLE, or that has no code at all.
"""

import uuid

import schemathesis
from schemathesis import GenerationMode

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


def _meant_valid(case):
    meta = getattr(case, "meta", None)
    return meta is None or meta.generation.mode == GenerationMode.POSITIVE


@schemathesis.hook
def map_case(ctx, case):
    """Keeps requests meant to be valid within the rules that span parameters (see above)."""
    path = getattr(case.operation, "path", None)
    if not _meant_valid(case) or path is None:
        return case
    query = case.query if isinstance(case.query, dict) else None
    if path == "/api/chat/messages" and query is not None:
        query.pop("before", None)
        query.pop("after", None)
    if path == "/api/chat/conversations" and query is not None and str(query.get("after") or "").strip():
        query["page"] = 1
    # Not always a dict: schemathesis may hand over a case-insensitive mapping of its own.
    headers = case.headers
    if headers is not None:
        for name in list(headers):
            if name.lower() == "idempotency-key":
                headers[name] = uuid.uuid4().hex
    if path == "/api/auth/login" and isinstance(case.body, dict) and isinstance(case.body.get("password"), str):
        password = case.body["password"].encode("utf-8")
        if len(password) > 72:
            case.body["password"] = password[:72].decode("utf-8", "ignore") or "0"
    return case
