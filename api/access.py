"""API keys at the HTTP edge: who a request is from, and refusing those that must say.

Starlette's ``AuthenticationMiddleware`` runs ``KeyAuthentication`` on every request: a valid
``Authorization: Bearer <key>`` (or, on the SSE routes, ``?access_token=<key>``, since a
browser's ``EventSource`` cannot send headers) makes the request ``scope["user"]``'s. It refuses
nothing itself: the rate limiter then counts a known client by its key and anyone else by
address, so guessing keys is as slow as the rate limit; and each route that needs a client
asks for one (``api/dependencies.py``), which is a 401 for anyone else.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection
from starlette.types import Scope

from service.access import ApiKeys, Client

ACCESS_TOKEN = "access_token"
"""The query parameter that carries a key on the SSE routes."""


class Unauthorized(Exception):
    """A request that needs a valid API key came without one."""


class KeyUser(BaseUser):
    """An API key's client, as Starlette's authentication knows it."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.client.name


class KeyAuthentication(AuthenticationBackend):
    """Identifies the client by its API key.

    Args:
        keys: the clients of the keys file.
        token_in_query: whether a path also takes the key as ``?access_token=``.
    """

    def __init__(self, keys: ApiKeys, *, token_in_query: Callable[[str], bool]) -> None:
        self.keys = keys
        self.token_in_query = token_in_query

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        key = bearer(conn.headers.get("authorization"))
        if key is None and self.token_in_query(conn.url.path):
            key = conn.query_params.get(ACCESS_TOKEN)
        client = None if key is None else self.keys.identify(key)
        if client is None:
            return None
        scopes = ["authenticated", "admin"] if client.admin else ["authenticated"]
        return AuthCredentials(scopes), KeyUser(client)


def bearer(authorization: str | None) -> str | None:
    """The key in an ``Authorization: Bearer <key>`` header."""
    if authorization is None:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None


def client_of(scope: Scope) -> Client | None:
    user = scope.get("user")
    return user.client if isinstance(user, KeyUser) else None
