"""API_KEY mode (docs: protocol.rst, "API key"): configured keys with optional expiry."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from appsync_events.protocol.subprotocol import lookup

from .._logging import fingerprint
from ..config import ApiKeyConfig, AuthType
from .base import AuthRequest, Identity, unauthorized

__all__ = ["ApiKeyVerifier", "api_key_principal"]


def api_key_principal(key: str) -> str:
    """How an API key is named in logs, the recorder and the console: ``key:`` and its
    :func:`~appsync_emulator._logging.fingerprint`, never characters of the key."""
    return "key:" + fingerprint(key)


class ApiKeyVerifier:
    """Accepts a known, unexpired ``x-api-key``; identity is ``null`` as in AWS
    (docs: protocol.rst, "The identity handlers see").

    The principal (in logs and the recorder) is :func:`api_key_principal`, never
    characters of the key.
    """

    mode = AuthType.API_KEY

    def __init__(self, keys: Sequence[ApiKeyConfig]) -> None:
        self.keys = tuple(keys)
        self._identities = {
            key.key: Identity(mode=self.mode, ctx=None, principal=api_key_principal(key.key))
            for key in self.keys
        }
        self._matched: dict[str, tuple[ApiKeyConfig, ...]] = {}
        """The configured keys each given ``x-api-key`` string matched: a client sends the
        same key with every operation, and the comparison needs doing once.  Only strings
        that matched get in (the keys never change), so it stays small; expiry is checked
        on every request."""

    def applies(self, request: AuthRequest) -> bool:
        # The usual spelling first: a lookup that finds this key finds a value (maybe
        # under an earlier spelling; values are strings) without lower-casing every key.
        return "x-api-key" in request.auth or request.header("x-api-key") is not None

    def quick(self, auth: Mapping[str, str], now: Callable[[], datetime]) -> Identity | None:
        """What :meth:`verify` returns for a request with auth map ``auth``, decided at once
        when its ``x-api-key`` matched before and one of the keys it matched is still valid
        (``now`` is called only for a key with an expiry); ``None`` when :meth:`verify`
        must decide (no key, a key not seen yet, every match expired, or a subclass).

        A request with a key :meth:`applies` to; the publish path asks this first.
        """
        if type(self) is not ApiKeyVerifier:
            return None
        given = lookup(auth, "x-api-key")
        if not given:
            return None
        for key in self._matched.get(given, ()):
            if key.expires is None or key.valid_at(now()):
                return self._identities[key.key]
        return None

    async def verify(self, request: AuthRequest, now: datetime) -> Identity:
        given = request.header("x-api-key") or ""
        matched = self._matched.get(given)
        if matched is None:
            # Compare every key in constant time so timing reveals nothing about which
            # matched.  surrogatepass: a lone surrogate (a JSON escape) is a mismatch, not
            # a crash.
            raw = given.encode("utf-8", "surrogatepass")
            matched = tuple(
                key
                for key in self.keys
                if hmac.compare_digest(key.key.encode("utf-8", "surrogatepass"), raw)
            )
            if matched:
                self._matched[given] = matched
        for key in matched:
            if key.valid_at(now):
                return self._identities[key.key]
        raise unauthorized()
