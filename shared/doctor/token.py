"""Read what an access token actually grants: the claims of its (unverified) JWT payload.

The doctor asks the configured credential for a Graph token and compares its `roles` claim (the application
permissions admin consent granted) with what the policy needs. Verification is Graph's job; here the payload
is only read, so a 403 at 2 a.m. is predicted at deploy time instead.
"""

from __future__ import annotations

import base64
import inspect
import json
from dataclasses import dataclass
from typing import Any

from shared.jsonshape import is_array, is_object


class TokenUnreadable(ValueError):
    """The credential returned something that is not a JWT with a JSON payload."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The claims the doctor looks at."""

    roles: frozenset[str]  # application permissions (app-only tokens)
    scopes: frozenset[str]  # delegated permissions (`scp`; a signed-in user's token)
    app_id: str | None  # appid (v1) or azp (v2): which identity the token is for
    audience: str | None
    tenant: str | None

    @property
    def app_only(self) -> bool:
        return not self.scopes


def decode_claims(token: str) -> TokenClaims:
    """Claims of a compact JWT (header.payload.signature), without verifying the signature."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenUnreadable("the access token is not a JWT (expected three dot-separated parts)")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenUnreadable(f"the access token's payload is not base64url JSON ({exc})") from None
    if not is_object(claims):
        raise TokenUnreadable("the access token's payload is not a JSON object")
    roles = claims.get("roles")
    scopes = str(claims.get("scp") or "").split()
    return TokenClaims(
        roles=frozenset(str(r) for r in roles) if is_array(roles) else frozenset(),
        scopes=frozenset(scopes),
        app_id=claims.get("appid") or claims.get("azp"),
        audience=claims.get("aud"),
        tenant=claims.get("tid"),
    )


async def get_token(credential: Any, scope: str) -> str:
    """The raw access token from a sync or async azure-identity style credential."""
    result = credential.get_token(scope)
    if inspect.isawaitable(result):
        result = await result
    return result.token


async def close_credential(credential: Any) -> None:
    """Close a credential the doctor built (sync or async); no-op for objects without close()."""
    close = getattr(credential, "close", None)
    if close is None:
        return
    result = close()
    if inspect.isawaitable(result):
        await result
