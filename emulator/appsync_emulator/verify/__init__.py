"""One verifier per auth mode, and the policy that picks among them."""

from __future__ import annotations

from collections.abc import Callable

from ..config import AuthType, CognitoConfig, ConfigError, EmulatorConfig, OidcConfig
from ..issuer import LocalIssuer
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
from .iam import IamVerifier
from .lambda_ import LambdaVerifier
from .tokens import CognitoVerifier, JwksKeys, OidcVerifier

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


def build_policy(
    config: EmulatorConfig,
    *,
    issuer: LocalIssuer | None = None,
    on_error: Callable[[BaseException], None] | None = None,
) -> AuthPolicy:
    """Return the policy with one verifier per configured auth provider.

    Args:
        config: the emulator configuration (``auth_providers`` and their settings).
        issuer: the local token issuer whose keys Cognito/OIDC trust when no
            ``jwks_file`` is configured; created from ``config`` when ``None`` (its key is
            only generated if a token is actually checked).
        on_error: receives exceptions raised by a Lambda authorizer (for
            ``server.check()``).

    Raises:
        ConfigError: a ``jwks_file`` cannot be loaded, or a Lambda provider has no
            ``lambda_authorizer`` settings.
    """
    verifiers: dict[AuthType, Verifier] = {}
    for mode in config.auth_providers:
        match mode:
            case AuthType.API_KEY:
                verifiers[mode] = ApiKeyVerifier(config.api_keys)
            case AuthType.AWS_IAM:
                verifiers[mode] = IamVerifier(
                    config.iam_credentials,
                    region=config.region,
                    strict_aws_escaping=config.strict_aws_escaping,
                    api_id=config.api_id,
                    account_id=config.account_id,
                    custom_domains=config.custom_domains,
                )
            case AuthType.AMAZON_COGNITO_USER_POOLS:
                issuer = issuer or LocalIssuer.for_config(config)
                cognito = config.cognito or _default_cognito()
                keys = _keys(cognito.jwks_file, issuer)
                verifiers[mode] = CognitoVerifier(cognito, keys, region=config.region)
            case AuthType.OPENID_CONNECT:
                issuer = issuer or LocalIssuer.for_config(config)
                oidc = config.oidc or _default_oidc()
                keys = _keys(oidc.jwks_file, issuer)
                verifiers[mode] = OidcVerifier(oidc, keys, default_issuer=issuer.oidc_issuer)
            case AuthType.AWS_LAMBDA:
                if config.lambda_authorizer is None:
                    raise ConfigError(
                        "auth_providers: AWS_LAMBDA needs lambda_authorizer "
                        "(lambdaAuthorizerConfig.authorizerUri)"
                    )
                verifiers[mode] = LambdaVerifier(
                    config.lambda_authorizer,
                    api_id=config.api_id,
                    account_id=config.account_id,
                    timeout=config.handler_timeout,
                    on_error=on_error,
                )
    return AuthPolicy(verifiers)


def _keys(jwks_file: str | None, issuer: LocalIssuer) -> JwksKeys:
    return JwksKeys.from_file(jwks_file) if jwks_file else JwksKeys(issuer=issuer)


def _default_cognito() -> CognitoConfig:
    return CognitoConfig()


def _default_oidc() -> OidcConfig:
    return OidcConfig()
