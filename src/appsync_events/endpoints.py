"""Endpoint URLs of an Event API: validation and derivation.

An Event API has an HTTP endpoint (``https://<prefix>.appsync-api.<region>.amazonaws.com/event``,
publish only, and the ``host`` every authorizer signs) and a real-time endpoint
(``wss://<prefix>.appsync-realtime-api.<region>.amazonaws.com/event/realtime``).  The two AWS
host names differ only in ``appsync-api`` versus ``appsync-realtime-api``; a custom
domain serves both paths on one host.  ``http``/``ws`` are accepted for local servers
such as the emulator.

Every function raises :class:`~appsync_events.errors.ConfigurationError` naming the bad URL
and what is wrong with it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlsplit

from .errors import ConfigurationError

__all__ = [
    "HTTP_PATH",
    "REALTIME_PATH",
    "http_endpoint_from_realtime",
    "http_host_from_realtime",
    "realtime_endpoint_from_http",
    "region_from_host",
    "signing_host",
]

HTTP_PATH: Final = "/event"
"""Path of the HTTP endpoint."""
REALTIME_PATH: Final = "/event/realtime"
"""Path of the real-time endpoint."""

_HTTP_SCHEMES: Final = {"https": "wss", "http": "ws"}
_REALTIME_SCHEMES: Final = {"wss": "https", "ws": "http"}
_DEFAULT_PORTS: Final = {"https": 443, "wss": 443, "http": 80, "ws": 80}

# <prefix>.appsync-api.<region>.amazonaws.com[.cn] and the -realtime- twin.  The prefix is
# 26 characters on real APIs, but the docs' own examples use shorter ones
# ("example1234567890000"), so any DNS label is accepted.
_AWS_HOST: Final = re.compile(
    r"^(?P<prefix>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)"
    r"\.(?P<kind>appsync-api|appsync-realtime-api)"
    r"\.(?P<region>[a-z]{2}(?:-[a-z0-9]+)+-[0-9]+)"
    r"\.(?P<suffix>amazonaws\.com(?:\.cn)?)$"
)
_DNS_LABEL: Final = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """A parsed, validated endpoint URL."""

    scheme: str
    hostname: str  # lower case; IPv6 without brackets
    port: int | None  # None when absent or the scheme's default
    path: str

    @property
    def netloc(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return host if self.port is None else f"{host}:{self.port}"

    def url(self, scheme: str, hostname: str, path: str) -> str:
        moved = _Endpoint(scheme, hostname, self.port, path)
        return f"{scheme}://{moved.netloc}{path}"


def _fail(url: object, problem: str) -> ConfigurationError:
    return ConfigurationError(f"invalid endpoint {url!r}: {problem}")


def _check_hostname(url: str, hostname: str) -> None:
    if not hostname:
        raise _fail(url, "the URL has no host")
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        pass
    else:
        return
    labels = hostname[:-1].split(".") if hostname.endswith(".") else hostname.split(".")
    if len(hostname) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise _fail(url, f"{hostname!r} is not a valid host name")


def _parse(url: object, schemes: tuple[str, ...]) -> _Endpoint:
    """Split and validate ``url``; ``schemes`` lists the accepted schemes."""
    if not isinstance(url, str):
        raise ConfigurationError(f"endpoint must be a str URL, got {type(url).__name__}")
    if not url:
        raise ConfigurationError("endpoint must not be empty")
    if url != url.strip() or any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise _fail(url, "the URL contains whitespace or control characters")
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _fail(url, str(exc)) from None
    if parts.scheme not in schemes:
        if not parts.scheme or not parts.netloc:
            raise _fail(url, f"expected an absolute URL such as {schemes[0]}://host{HTTP_PATH}")
        raise _fail(url, f"scheme must be one of {', '.join(schemes)}, not {parts.scheme!r}")
    if parts.username is not None or parts.password is not None:
        raise _fail(url, "the URL must not contain user information")
    if parts.query or url.endswith("?"):
        raise _fail(url, "the URL must not have a query string")
    if parts.fragment or "#" in url:
        raise _fail(url, "the URL must not have a fragment")
    hostname = parts.hostname or ""
    _check_hostname(url, hostname)
    if port == 0:
        raise _fail(url, "port 0 is not a valid port")
    if port == _DEFAULT_PORTS[parts.scheme]:
        port = None
    return _Endpoint(parts.scheme, hostname, port, parts.path)


def _parse_http(url: object) -> _Endpoint:
    """Parse an HTTP endpoint: http(s) and the path ``/event`` (or no path at all)."""
    ep = _parse(url, ("https", "http"))
    if ep.path == REALTIME_PATH:
        raise _fail(url, f"this is a real-time path; the HTTP endpoint's path is {HTTP_PATH}")
    if ep.path not in ("", "/", HTTP_PATH):
        raise _fail(url, f"the HTTP endpoint's path must be {HTTP_PATH}, not {ep.path!r}")
    match = _AWS_HOST.match(ep.hostname)
    if match and match["kind"] == "appsync-realtime-api":
        raise _fail(
            url,
            "this is the real-time host (appsync-realtime-api); the HTTP endpoint's host "
            "is <prefix>.appsync-api.<region>.amazonaws.com",
        )
    return ep


def _parse_realtime(url: object) -> _Endpoint:
    """Parse a real-time endpoint: ws(s) and the path ``/event/realtime`` (or no path)."""
    ep = _parse(url, ("wss", "ws"))
    if ep.path not in ("", "/", REALTIME_PATH):
        raise _fail(url, f"the real-time endpoint's path must be {REALTIME_PATH}, not {ep.path!r}")
    match = _AWS_HOST.match(ep.hostname)
    if match and match["kind"] == "appsync-api":
        raise _fail(
            url,
            "this is the HTTP host (appsync-api); the real-time endpoint's host is "
            "<prefix>.appsync-realtime-api.<region>.amazonaws.com",
        )
    return ep


def _swap_kind(hostname: str, kind: str) -> str:
    match = _AWS_HOST.match(hostname)
    if match is None:  # custom domain or local server: one host serves both
        return hostname
    return f"{match['prefix']}.{kind}.{match['region']}.{match['suffix']}"


def realtime_endpoint_from_http(url: str) -> str:
    """Return the real-time (WebSocket) endpoint that belongs to an HTTP endpoint.

    ``https`` becomes ``wss`` and ``http`` becomes ``ws``; an AWS host's ``appsync-api``
    label becomes ``appsync-realtime-api``; a custom domain or local host is kept; the path
    becomes ``/event/realtime``.  A non-default port is kept.  An URL that already is a
    real-time endpoint is validated and returned in the same canonical form, so callers
    may pass either kind.

    Args:
        url: ``https://<prefix>.appsync-api.<region>.amazonaws.com/event`` or a custom
            domain / local URL with the path ``/event`` (or no path).

    Returns:
        The real-time URL, e.g. ``wss://<prefix>.appsync-realtime-api.<region>.amazonaws.com/event/realtime``.

    Raises:
        ConfigurationError: the URL is malformed, has the wrong scheme, path or host kind,
            or carries user information, a query or a fragment.
    """
    if isinstance(url, str) and url.lower().startswith(("wss:", "ws:")):
        ep = _parse_realtime(url)
        return ep.url(ep.scheme, ep.hostname, REALTIME_PATH)
    ep = _parse_http(url)
    return ep.url(
        _HTTP_SCHEMES[ep.scheme], _swap_kind(ep.hostname, "appsync-realtime-api"), REALTIME_PATH
    )


def http_endpoint_from_realtime(url: str) -> str:
    """Return the HTTP endpoint that belongs to a real-time endpoint.

    The inverse of :func:`realtime_endpoint_from_http`: ``wss`` becomes ``https``, ``ws``
    becomes ``http``, ``appsync-realtime-api`` becomes ``appsync-api`` on AWS hosts, custom
    domains keep their host, and the path becomes ``/event``.  An URL that already is an
    HTTP endpoint is validated and returned in the same canonical form.

    Args:
        url: ``wss://<prefix>.appsync-realtime-api.<region>.amazonaws.com/event/realtime``
            or a custom domain / local URL with the path ``/event/realtime`` (or no path).

    Returns:
        The HTTP URL, e.g. ``https://<prefix>.appsync-api.<region>.amazonaws.com/event``.

    Raises:
        ConfigurationError: the URL is malformed, has the wrong scheme, path or host kind,
            or carries user information, a query or a fragment.
    """
    if isinstance(url, str) and url.lower().startswith(("https:", "http:")):
        ep = _parse_http(url)
        return ep.url(ep.scheme, ep.hostname, HTTP_PATH)
    ep = _parse_realtime(url)
    return ep.url(_REALTIME_SCHEMES[ep.scheme], _swap_kind(ep.hostname, "appsync-api"), HTTP_PATH)


def signing_host(http_url: str) -> str:
    """Return the ``host`` value authorizers put in their header map.

    It is the HTTP endpoint's host, lower case, with the port when it is not the scheme's
    default (``127.0.0.1:8080``; ``[::1]:8080`` for IPv6).  AWS uses this value to
    validate a connection even though the WebSocket goes to the real-time host.

    Args:
        http_url: the HTTP endpoint (``https://…/event`` or ``http://…/event``).

    Raises:
        ConfigurationError: ``http_url`` is not a valid HTTP endpoint (a ``wss://`` URL or
            an ``appsync-realtime-api`` host included: convert it with
            :func:`http_endpoint_from_realtime` first).
    """
    return _parse_http(http_url).netloc


def region_from_host(host: str) -> str | None:
    """Return the AWS region named in a standard AppSync host, else ``None``.

    Works for ``<prefix>.appsync-api.<region>.amazonaws.com`` and
    ``…appsync-realtime-api…``, China's ``.amazonaws.com.cn``, with or without a port.
    A custom domain or local host gives ``None``: pass the region explicitly.
    """
    hostname = host.strip().lower()
    if hostname.startswith("["):  # IPv6 literal
        return None
    hostname = hostname.rsplit(":", 1)[0] if ":" in hostname else hostname
    match = _AWS_HOST.match(hostname.rstrip("."))
    return match["region"] if match else None


def http_host_from_realtime(host: str) -> str:
    """Return the HTTP host that belongs to a ``host`` value (``hostname[:port]``).

    An AWS real-time host (``<prefix>.appsync-realtime-api.<region>.amazonaws.com``)
    becomes its ``appsync-api`` twin, port kept; any other host (an HTTP host, a custom
    domain, a local server) comes back unchanged, in lower case.  Signing the real-time host
    is a common mistake that AppSync rejects; compare a host with this function's answer
    to detect it.
    """
    lowered = host.strip().lower()
    if lowered.startswith("["):  # IPv6 literal
        return lowered
    hostname, colon, port = lowered.partition(":")
    return f"{_swap_kind(hostname, 'appsync-api')}{colon}{port}"
