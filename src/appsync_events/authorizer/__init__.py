"""Authorizers: the header maps that authorize each AppSync Events operation.

Built in: :class:`ApiKey`, :class:`Token` (Cognito, OIDC, Lambda) and :class:`IAM`
(SigV4 via botocore).  Anything with ``async def authorize(request) -> AuthorizeResult``
is an :class:`Authorizer` too.

The client tells every authorizer the API's HTTP host (``AuthorizeRequest.host``), so none
needs the endpoint: ``ApiKey("da2-...")``, ``Token(token)``, ``IAM()``.
"""

from __future__ import annotations

from .api_key import ApiKey as ApiKey
from .base import (
    Authorizer as Authorizer,
    AuthorizeRequest as AuthorizeRequest,
    AuthorizeResult as AuthorizeResult,
    Operation as Operation,
)
from .iam import IAM as IAM, sign_request as sign_request
from .token import Token as Token

__all__ = [
    "IAM",
    "ApiKey",
    "AuthorizeRequest",
    "AuthorizeResult",
    "Authorizer",
    "Operation",
    "Token",
    "sign_request",
]
