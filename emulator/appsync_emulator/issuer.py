"""A local token issuer for the Cognito and OIDC auth modes.

The emulator never contacts a real identity provider.  Instead it owns an RSA key pair,
serves its JWKS (``GET /.well-known/jwks.json``) and OpenID configuration, and mints RS256
tokens shaped like Cognito's ID and access tokens::

    token = server.issuer.mint(sub="alice", groups=["admins"])          # Cognito ID token
    token = server.issuer.mint(sub="bob", token_use="access")           # Cognito access token
    token = server.issuer.mint(sub="carol", issuer=server.issuer.oidc_issuer,
                               audience="my-client")                    # OIDC token

Issuer strings are fixed, not derived from the listening port, so a token minted before
the port is known still verifies: by default the Cognito form
``https://cognito-idp.<region>.amazonaws.com/<userPoolId>`` (AWS's real format) and
:data:`DEFAULT_OIDC_ISSUER` for OIDC; both follow the config when it names them.

The key pair is generated lazily (on first use), or loaded from / persisted to a PEM file
(``token_key_file`` in the config, ``--key-file`` on the CLI) so that tokens minted by
``appsync-emulator token`` verify against a running emulator using the same file.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TextIO

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .config import ConfigError

if TYPE_CHECKING:
    from aiohttp import web

    from .config import EmulatorConfig

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_OIDC_ISSUER",
    "DEFAULT_USER_POOL_ID",
    "JWKS_PATH",
    "KEY_FILE_ENV",
    "OPENID_CONFIGURATION_PATH",
    "LocalIssuer",
    "cognito_issuer",
    "default_key_file",
    "TOKEN_DESCRIPTION",
    "add_token_arguments",
    "routes",
    "token_command",
    "token_main",
    "token_parser",
]

DEFAULT_CLIENT_ID: Final = "emulatorlocalclient0000000"
"""``aud`` (ID token) / ``client_id`` (access token) when nothing else is configured."""
DEFAULT_USER_POOL_ID: Final = "local_emulator"
DEFAULT_OIDC_ISSUER: Final = "https://oidc.appsync-emulator.local"
"""``iss`` expected in OPENID_CONNECT mode when the config names no issuer."""
JWKS_PATH: Final = "/.well-known/jwks.json"
OPENID_CONFIGURATION_PATH: Final = "/.well-known/openid-configuration"
KEY_FILE_ENV: Final = "APPSYNC_EMULATOR_KEY_FILE"
ALGORITHM: Final = "RS256"

TokenUse = Literal["id", "access"]


def cognito_issuer(region: str, user_pool_id: str) -> str:
    """AWS's issuer string for a user pool."""
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


def default_key_file() -> Path:
    """Where the CLI keeps its signing key: ``$APPSYNC_EMULATOR_KEY_FILE``, else
    ``$XDG_CACHE_HOME/appsync-emulator/issuer-key.pem`` (``~/.cache`` by default)."""
    env = os.environ.get(KEY_FILE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "appsync-emulator" / "issuer-key.pem"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _load_pem(path: Path) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"token key file {path}: cannot load an RSA private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"token key file {path}: not an RSA private key")
    return key


def _load_or_create(path: Path) -> rsa.RSAPrivateKey:
    """Load the PEM at ``path``, or generate a key and write it there (mode 0600).

    Creation uses ``O_EXCL`` so that two processes racing to create the file end up with
    the same key (the loser loads the winner's file).
    """
    if path.exists():
        return _load_pem(path)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load_pem(path)
    except OSError as exc:
        raise ConfigError(f"token key file {path}: cannot create it: {exc}") from exc
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


class LocalIssuer:
    """Owns an RSA key and mints RS256 tokens; thread-safe (mint from any thread).

    Args:
        issuer: the default ``iss`` of minted tokens (the Cognito form by default).
        oidc_issuer: the ``iss`` the OIDC verifier expects (:data:`DEFAULT_OIDC_ISSUER`).
        client_id: the default ``aud``/``client_id``.
        key: use this private key.
        key_file: load the key from this PEM file, creating it when missing.
    """

    def __init__(
        self,
        *,
        issuer: str | None = None,
        oidc_issuer: str | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        key: rsa.RSAPrivateKey | None = None,
        key_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.issuer = issuer or cognito_issuer("us-east-1", DEFAULT_USER_POOL_ID)
        """Default ``iss`` of minted tokens."""
        self.oidc_issuer = oidc_issuer or DEFAULT_OIDC_ISSUER
        """The issuer OPENID_CONNECT mode expects; pass it as ``mint(issuer=...)``."""
        self.client_id = client_id
        self.key_file = None if key_file is None else Path(key_file)
        self._key = key
        self._lock = threading.Lock()
        self._kid: str | None = None
        self._public_jwk: dict[str, Any] | None = None

    @classmethod
    def for_config(
        cls, config: EmulatorConfig, *, key_file: str | os.PathLike[str] | None = None
    ) -> LocalIssuer:
        """The issuer whose tokens the config's Cognito/OIDC verifiers accept.

        ``key_file`` defaults to ``config.token_key_file`` (``None``: an in-memory key).
        """
        cognito = config.cognito
        if cognito is not None and cognito.issuer:
            issuer = cognito.issuer
        else:
            region = (cognito.aws_region if cognito else None) or config.region
            pool = cognito.user_pool_id if cognito else DEFAULT_USER_POOL_ID
            issuer = cognito_issuer(region, pool)
        oidc = config.oidc.issuer if config.oidc is not None else None
        client_id = DEFAULT_CLIENT_ID
        if config.oidc is not None and config.oidc.client_id and cognito is None:
            client_id = config.oidc.client_id
        return cls(
            issuer=issuer,
            oidc_issuer=oidc,
            client_id=client_id,
            key_file=key_file if key_file is not None else config.token_key_file,
        )

    # --- keys -----------------------------------------------------------------------------

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        """The signing key, created or loaded on first use."""
        with self._lock:
            if self._key is None:
                if self.key_file is not None:
                    self._key = _load_or_create(self.key_file)
                else:
                    self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._key

    def _jwk(self) -> dict[str, Any]:
        if self._public_jwk is None:
            jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
            # RFC 7638 thumbprint as the kid: stable for a key file across processes.
            members = json.dumps(
                {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True
            )
            self._kid = _b64url(hashlib.sha256(members.encode()).digest())
            self._public_jwk = {**jwk, "kid": self._kid, "alg": ALGORITHM, "use": "sig"}
        return self._public_jwk

    @property
    def kid(self) -> str:
        """The key id (RFC 7638 thumbprint) in every minted token's header."""
        return str(self._jwk()["kid"])

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document: ``{"keys": [{kty, n, e, kid, alg, use}]}``."""
        return {"keys": [dict(self._jwk())]}

    def openid_configuration(self, base_url: str) -> dict[str, Any]:
        """The discovery document served at :data:`OPENID_CONFIGURATION_PATH`."""
        base = base_url.rstrip("/")
        return {
            "issuer": self.issuer,
            "jwks_uri": base + JWKS_PATH,
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "subject_types_supported": ["public"],
            "response_types_supported": ["token", "id_token"],
        }

    # --- minting --------------------------------------------------------------------------

    def mint(
        self,
        sub: str = "alice",
        *,
        groups: Iterable[str] = (),
        token_use: TokenUse = "id",
        expires_in: float = 3600,
        claims: Mapping[str, Any] | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        username: str | None = None,
        now: datetime | None = None,
        kid: str | None = None,
    ) -> str:
        """Return a signed RS256 JWT shaped like a Cognito token.

        Args:
            sub: the subject.
            groups: ``cognito:groups`` (omitted when empty).
            token_use: ``"id"`` (``aud`` = client id) or ``"access"`` (``client_id``).
            expires_in: seconds until ``exp`` (negative for an already expired token).
            claims: extra claims; they override the defaults, and a ``None`` value
                removes that claim (e.g. ``{"exp": None}``).
            issuer: ``iss``; defaults to :attr:`issuer`.
            audience: the client id; defaults to :attr:`client_id`.
            username: ``cognito:username``/``username``; defaults to ``sub``.
            now: the issue time (defaults to the wall clock, which freezegun controls).
            kid: override the header ``kid`` (to test unknown-key rejection).
        """
        if token_use not in ("id", "access"):
            raise ValueError(f"token_use must be 'id' or 'access', not {token_use!r}")
        issued = int((now or datetime.now(UTC)).timestamp())
        client = audience or self.client_id
        payload: dict[str, Any] = {
            "sub": sub,
            "iss": issuer or self.issuer,
            "iat": issued,
            "auth_time": issued,
            "exp": issued + int(expires_in),
            "jti": str(uuid.uuid4()),
            "origin_jti": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()),
            "token_use": token_use,
        }
        groups = list(groups)
        if groups:
            payload["cognito:groups"] = groups
        if token_use == "id":
            payload["aud"] = client
            payload["cognito:username"] = username or sub
        else:
            payload["client_id"] = client
            payload["username"] = username or sub
            payload["scope"] = "aws.cognito.signin.user.admin"
        for name, value in (claims or {}).items():
            if value is None:
                payload.pop(name, None)
            else:
                payload[name] = value
        headers = {"kid": kid or self.kid, "typ": "JWT"}
        return jwt.encode(payload, self.private_key, algorithm=ALGORITHM, headers=headers)


def routes(issuer: LocalIssuer) -> list[web.RouteDef]:
    """aiohttp routes serving the JWKS and the OpenID configuration of ``issuer``."""
    from aiohttp import web

    async def jwks(request: web.Request) -> web.Response:
        return web.json_response(issuer.jwks())

    async def openid_configuration(request: web.Request) -> web.Response:
        base = f"{request.scheme}://{request.host}"
        return web.json_response(issuer.openid_configuration(base))

    return [
        web.get(JWKS_PATH, jwks),
        web.get(OPENID_CONFIGURATION_PATH, openid_configuration),
    ]


# --- the ``appsync-emulator token`` command ----------------------------------------------------


def _claim(text: str) -> tuple[str, Any]:
    name, eq, raw = text.partition("=")
    if not eq or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw  # not JSON: keep the text
    return name, value


TOKEN_DESCRIPTION: Final = (
    "Print a JWT minted by the emulator's local issuer.  It verifies against an emulator "
    "that uses the same key file (--key-file, else the config's tokenKeyFile, else "
    f"${KEY_FILE_ENV} or ~/.cache/appsync-emulator/issuer-key.pem, which is also what "
    "'appsync-emulator' itself uses when the config names no tokenKeyFile)."
)


def add_token_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``token`` options to ``parser`` (the CLI's subparser or a standalone one)."""
    parser.add_argument("--sub", default="user-1", help="subject (default: user-1)")
    parser.add_argument(
        "--groups",
        action="append",
        default=[],
        metavar="GROUP[,GROUP]",
        help="cognito:groups (repeatable or comma-separated)",
    )
    parser.add_argument("--token-use", choices=("id", "access"), default="id")
    parser.add_argument(
        "--expires-in", type=float, default=3600.0, help="seconds until exp (default 3600)"
    )
    parser.add_argument("--username", help="cognito:username / username (default: --sub)")
    parser.add_argument("--audience", help="aud / client_id (default: the config's client)")
    parser.add_argument("--issuer", help="iss (default: what the config expects)")
    parser.add_argument(
        "--oidc", action="store_true", help="mint for OPENID_CONNECT (the config's OIDC issuer)"
    )
    parser.add_argument(
        "--claim",
        action="append",
        type=_claim,
        default=[],
        metavar="NAME=VALUE",
        help="extra claim; VALUE is JSON when it parses, else text (repeatable)",
    )
    # A distinct dest: `appsync-emulator --config X token` keeps the top-level value.
    parser.add_argument(
        "--config", dest="token_config", help="emulator config file (.toml or .json)"
    )
    parser.add_argument("--key-file", help="PEM file of the signing key (created when missing)")


def token_parser(prog: str = "appsync-emulator token") -> argparse.ArgumentParser:
    """A standalone parser of the ``token`` options."""
    parser = argparse.ArgumentParser(prog=prog, description=TOKEN_DESCRIPTION)
    add_token_arguments(parser)
    return parser


def token_main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run ``appsync-emulator token`` with ``argv``; see :func:`token_command`."""
    return token_command(token_parser().parse_args(argv), out=out)


def token_command(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Print one token on stdout (exit status 0), or the config error on stderr (2)."""
    stream = out if out is not None else sys.stdout
    from .config import EmulatorConfig

    config_path = args.token_config or getattr(args, "config", None)
    try:
        config = EmulatorConfig.from_file(config_path) if config_path else EmulatorConfig()
        key_file = args.key_file or config.token_key_file or default_key_file()
        issuer = LocalIssuer.for_config(config, key_file=key_file)
        audience = args.audience
        iss = args.issuer
        if args.oidc:
            iss = iss or issuer.oidc_issuer
            if audience is None and config.oidc is not None and config.oidc.client_id:
                audience = config.oidc.client_id
        groups = [g for item in args.groups for g in item.split(",") if g]
        token = issuer.mint(
            args.sub,
            groups=groups,
            token_use=args.token_use,
            expires_in=args.expires_in,
            claims=dict(args.claim),
            issuer=iss,
            audience=audience,
            username=args.username,
        )
    except ConfigError as exc:
        print(f"appsync-emulator token: {exc}", file=sys.stderr)
        return 2
    print(token, file=stream)
    return 0
