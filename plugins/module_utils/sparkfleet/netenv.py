"""One proxy rule and one TLS setup for every HTTP request sparkfleet makes. Standard library only.

The serving health gate (a sync ``urllib`` GET) and the benchmark (an asyncio client) must reach a
server the same way, so both ask :func:`proxy_for` and :func:`ssl_context`; :func:`http_get` is the
sync GET that the health gate uses. The rule, the one curl and requests follow, except for loopback:

* ``http://`` URLs use ``http_proxy`` / ``HTTP_PROXY``, ``https://`` URLs ``https_proxy`` /
  ``HTTPS_PROXY``; either falls back to ``all_proxy`` / ``ALL_PROXY``. The lower-case name wins when
  both are set (requests, Python); the upper-case ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD``
  is set (a CGI environment, "httpoxy", as Python does). A proxy without a scheme is ``http://``.
  An empty value means no proxy.
* ``no_proxy`` / ``NO_PROXY`` (lower case wins): entries separated by commas or white space. ``*``
  alone bypasses every host. A name matches itself and every subdomain (``lab.example`` and
  ``.lab.example`` both match ``lab.example`` and ``spark-01.lab.example``, never
  ``otherlab.example``), case-insensitively. An IP address matches itself, an IP with ``/bits``
  (CIDR, IPv4 or IPv6, as curl >= 7.86 and requests) matches its network; IPv6 entries are written
  without brackets (``::1``) or bracketed with a port. ``name:port`` matches that port only.
* Loopback (``localhost``, ``*.localhost``, ``127.0.0.0/8``, ``::1``) is never proxied. curl 7.88 and
  requests do send it to the proxy unless NO_PROXY lists it, but a proxy resolves ``127.0.0.1`` on
  ITS side, never this host's server, so that is always wrong for a health probe or a benchmark.
  Go's ``net/http`` makes the same exception.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import ssl
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

__all__ = [
    "base_url_for",
    "check_header_value",
    "http_get",
    "no_proxy_matches",
    "proxy_for",
    "redact_url",
    "ssl_context",
]


def _env(environ: Mapping[str, str], name: str, *, upper: bool = True) -> str | None:
    """Lower case first, then upper case; None when neither is set."""
    if name in environ:
        return environ[name]
    if upper and name.upper() in environ:
        return environ[name.upper()]
    return None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """localhost, *.localhost, 127.0.0.0/8, ::1 (and ::ffff:127.x)."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    ip = _ip(name)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _entry_matches(
    entry: str, host: str, host_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None, port: int | None
) -> bool:
    want_port: int | None = None
    name = entry
    if name.startswith("["):  # [v6]:port or [v6]
        inner, _bracket, rest = name[1:].partition("]")
        name = inner
        if rest.startswith(":") and rest[1:].isdigit():
            want_port = int(rest[1:])
    elif name.count(":") == 1:  # name:port or v4:port (an IPv6 entry has two or more colons)
        base, _colon, port_text = name.partition(":")
        if port_text.isdigit():
            name, want_port = base, int(port_text)
    if want_port is not None and port != want_port:
        return False
    if "/" in name:
        try:
            network = ipaddress.ip_network(name, strict=False)
        except ValueError:
            return False
        return host_ip is not None and host_ip.version == network.version and host_ip in network
    entry_ip = _ip(name)
    if entry_ip is not None:
        return host_ip is not None and host_ip == entry_ip
    name = name.lstrip(".").rstrip(".").lower()
    if not name:
        return False
    return host == name or host.endswith("." + name)


def no_proxy_matches(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether a NO_PROXY value lists host (the rules in the module docstring)."""
    host = host.strip("[]").rstrip(".").lower()
    host_ip = _ip(host)
    for raw in no_proxy.replace(",", " ").split():
        if raw == "*":
            return True
        if _entry_matches(raw, host, host_ip, port):
            return True
    return False


def proxy_for(url: str, environ: Mapping[str, str]) -> str | None:
    """The proxy URL to use for url under environ (e.g. ``os.environ``), or None to connect directly."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in ("http", "https") or not host or is_loopback(host):
        return None
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return None
    no_proxy = _env(environ, "no_proxy")
    if no_proxy and no_proxy_matches(host, port, no_proxy):
        return None
    # HTTP_PROXY in a CGI environment may come from a request's "Proxy:" header (httpoxy).
    proxy = _env(environ, f"{scheme}_proxy", upper=not (scheme == "http" and "REQUEST_METHOD" in environ))
    if not proxy:
        proxy = _env(environ, "all_proxy")
    proxy = (proxy or "").strip()
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def base_url_for(bind_address: str, port: int, scheme: str = "http") -> str:
    """The URL a client on the same host uses for a server published on bind_address:port.

    Empty, ``0.0.0.0`` and ``::`` (every address) become loopback (``127.0.0.1`` and ``[::1]``); an IPv6
    address is bracketed (``fd00::2`` -> ``[fd00::2]``); a name or IPv4 address is used as is.
    """
    address = bind_address.strip().strip("[]")
    if address in ("", "0.0.0.0"):  # noqa: S104 - a comparison, not a bind
        address = "127.0.0.1"
    elif address == "::":
        address = "::1"
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}:{int(port)}"


def redact_url(url: str | None) -> str | None:
    """url without its password (``http://user:***@proxy:3128``), for reports and messages."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc}" if user else f"***@{netloc}").geturl()


def proxy_authorization(proxy_url: str) -> str | None:
    """The ``Proxy-Authorization`` value for a proxy URL with ``user:password@``; None without."""
    parts = urlsplit(proxy_url)
    if parts.username is None:
        return None
    token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return "Basic " + base64.b64encode(token).decode("ascii")


def check_header_value(name: str, value: str) -> None:
    """ValueError (naming the header, never echoing the value) when value cannot go into an HTTP header:
    a CR, LF or other control character (an API key read from a file with its newline) or non-Latin-1 text."""
    for ch in value:
        if ch in "\r\n":
            raise ValueError(f"the {name} header value contains a CR or LF character (strip the trailing newline)")
        if (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F:
            raise ValueError(f"the {name} header value contains the control character {ord(ch):#04x}")
        if ord(ch) > 0xFF:
            raise ValueError(f"the {name} header value has a character outside Latin-1 (U+{ord(ch):04X})")


def ssl_context(
    *,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    insecure: bool = False,
) -> ssl.SSLContext:
    """A client TLS context: the system CAs or ``ca_file`` (a PEM bundle, e.g. the lab's private CA),
    an optional client certificate (``cert_file``, with its key in it or in ``key_file``), and with
    ``insecure`` no certificate or host-name verification at all. Raises ValueError naming the file."""
    try:
        ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the CA file {ca_file}: {exc}") from exc
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if key_file and not cert_file:
        raise ValueError("a client key needs its client certificate (client_cert)")
    if cert_file:
        try:
            ctx.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"cannot load the client certificate {cert_file} (key {key_file or 'in it'}): {exc}"
            ) from exc
    return ctx


def http_get(
    url: str,
    timeout: float,
    *,
    headers: Mapping[str, str] | None = None,
    ca_file: str | None = None,
    insecure: bool = False,
    cert_file: str | None = None,
    key_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[int, str]:
    """GET url -> (status, first 2 KiB of the body as text), any HTTP status included.

    Status 0 and the reason when nothing answered (refused, timeout, TLS or proxy failure), the same
    contract as serving's health probe. The proxy comes from :func:`proxy_for` on ``environ`` (default
    ``os.environ``) through an explicit ProxyHandler: urllib's own environment handling is never used.
    ValueError for a header value with CR/LF or a CA/certificate file that does not load.
    """
    import urllib.error  # here, not at the top: the benchmark imports this module and never needs urllib
    import urllib.request

    env = os.environ if environ is None else environ
    all_headers = {"Accept": "application/json", **(headers or {})}
    for name, value in all_headers.items():
        check_header_value(name, value)
    proxy = proxy_for(url, env)
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler({urlsplit(url).scheme: proxy} if proxy else {})
    ]
    if url.startswith("https://"):
        ctx = ssl_context(ca_file=ca_file, cert_file=cert_file, key_file=key_file, insecure=insecure)
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(url, headers=all_headers)  # noqa: S310 - http(s) only, checked by the caller
    try:
        with opener.open(req, timeout=timeout) as resp:
            return int(resp.status), resp.read(2048).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(2048).decode(errors="replace") if exc.fp else ""
    except (urllib.error.URLError, OSError, TimeoutError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        via = f" (via proxy {redact_url(proxy)})" if proxy else ""
        return 0, f"{reason}{via}"
