"""One verifier per auth mode, and the policy that picks among them."""

from __future__ import annotations

from ..config import AuthType, EmulatorConfig
from .api_key import ApiKeyVerifier
from .base import (
    AuthFailure as AuthFailure,
    AuthPolicy as AuthPolicy,
    AuthRequest as AuthRequest,
    Identity as Identity,
    Operation as Operation,
    Transport as Transport,
    Verifier as Verifier,
    unauthorized as unauthorized,
)

__all__ = [
    "AuthFailure",
    "AuthPolicy",
    "AuthRequest",
    "Identity",
    "Operation",
    "Transport",
    "Verifier",
    "build_policy",
    "unauthorized",
]


def build_policy(config: EmulatorConfig) -> AuthPolicy:
    """Return the policy with one verifier per configured auth provider."""
    verifiers: dict[AuthType, Verifier] = {AuthType.API_KEY: ApiKeyVerifier(config.api_keys)}
    return AuthPolicy(verifiers)
