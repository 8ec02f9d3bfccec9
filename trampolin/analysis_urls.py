"""The URLs a user submits for analysis, normalized to the key their analysis is stored under.

The app's rule (src/utils/urlUtils.ts normalizeUrl), made total and stable:
a Facebook redirect (facebook.com/l.php?u=...) stands for the URL it carries;
the scheme, "www.", user info, port, query and fragment are dropped; the host
is lower-cased; the path is percent-decoded (all but %25, %23 and %3F, which
would read as "%", "#" and "?", until nothing more decodes, so that normalizing
twice changes nothing); trailing slashes are dropped. So
``https://www.Shop.example/Sale/?utm=x`` and ``shop.example/Sale`` are one
analysis. What is left must be a host name, optionally with a path.
No database here; tests/unit/test_analysis_urls.py covers it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qs, unquote, urlsplit

from trampolin.errors import InvalidInput
from trampolin.values import text

MAX_URL_LENGTH = 2048
MAX_URLS = 500
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HOST = re.compile(r"^[^\s/?#@:%\\]+$")
# Runs of percent escapes, except those of "%", "#" and "?".
_ESCAPES = re.compile(r"(?:%(?!25|23|3[Ff])[0-9A-Fa-f]{2})+")
_FACEBOOK_REDIRECT = re.compile(r"^(?:[a-z]+\.)?facebook\.com$")


def normalize_url(url: object) -> str:
    """The normalized form of one submitted URL; InvalidInput saying why it is not one."""
    raw = text("url", url).strip()
    if not raw:
        raise InvalidInput("url is empty")
    if len(raw) > MAX_URL_LENGTH:
        raise InvalidInput(f"url is longer than {MAX_URL_LENGTH} characters: {raw[:60]!r}...")
    if any(ch.isspace() or not ch.isprintable() for ch in raw):
        raise InvalidInput(f"url {raw!r} contains spaces or control characters")
    try:
        parts = urlsplit(raw if _SCHEME.match(raw) else f"https://{raw}")
        host = (parts.hostname or "").lower()
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise InvalidInput(f"url {raw!r} cannot be parsed: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(f"url {raw!r}: only http and https URLs can be analyzed")
    if _FACEBOOK_REDIRECT.match(host) and parts.path == "/l.php":
        target = parse_qs(parts.query).get("u")
        if target and target[0].strip() and target[0].strip() != raw:
            return normalize_url(target[0])
    if host.startswith("www."):
        host = host[len("www.") :]
    if not host or not _HOST.match(host) or "." not in host.strip("."):
        raise InvalidInput(f"url {raw!r} has no host name")
    path = _decode(parts.path).rstrip("/")
    normalized = host.strip(".") + path
    if any(ch.isspace() or not ch.isprintable() for ch in normalized):
        raise InvalidInput(f"url {raw!r} decodes to spaces or control characters")
    return normalized


def normalize_urls(urls: Iterable[object]) -> list[str]:
    """The distinct normalized URLs, in the order first submitted; InvalidInput if none."""
    if isinstance(urls, str | bytes):
        raise InvalidInput("urls must be a list of URLs, not one string")
    seen: dict[str, None] = {}
    for url in urls:
        seen.setdefault(normalize_url(url), None)
        if len(seen) > MAX_URLS:
            raise InvalidInput(f"a search holds at most {MAX_URLS} distinct URLs")
    if not seen:
        raise InvalidInput("a search needs at least one URL")
    return list(seen)


def _decode(path: str) -> str:
    """``path`` percent-decoded until nothing more decodes (each pass makes it shorter)."""
    while True:
        decoded = _ESCAPES.sub(lambda m: unquote(m.group(0), errors="replace"), path)
        if decoded == path:
            return path
        path = decoded
