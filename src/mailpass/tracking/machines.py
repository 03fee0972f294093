"""Telling machine opens and clicks from people's.

Every hit is recorded; the ones that are likely machines carry ``is_machine`` and a short
``machine_reason``. The rules, in order; the first that applies gives the reason:

1. ``HEAD`` requests: mail clients and browsers fetch with GET; link checkers ask with HEAD.
2. Known proxies and robots by user agent: Apple Mail Privacy Protection (which fetches every
   image of every message on delivery, whether or not anyone reads it, with the bare user agent
   ``Mozilla/5.0``), Gmail's and Yahoo's image proxies (they hide who opened the message and
   when it was opened again), link-preview robots, headless browsers, HTTP libraries, crawlers,
   and requests with no user agent at all.
3. Hits within ``DELIVERY_SCAN_WINDOW`` seconds of delivery: security gateways (Microsoft Defender
   Safe Links, Proofpoint, Mimecast, Barracuda) fetch links and images while the message is
   being delivered, before a person could have seen it, usually with a browser's user agent.
4. Clicks on every link of a message (at least two), or on ``BURST_MIN_LINKS`` different links,
   within ``BURST_WINDOW`` seconds: scanners follow every link at once; people do not. The whole
   burst is marked, the clicks before this one included.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import datetime

__all__ = [
    "BURST_MIN_LINKS",
    "BURST_WINDOW",
    "DELIVERY_SCAN_WINDOW",
    "burst_reason",
    "machine_reason",
]

DELIVERY_SCAN_WINDOW = 5.0  # seconds after the provider accepted the message
BURST_WINDOW = 1.0  # seconds
BURST_MIN_LINKS = 3  # different links clicked within BURST_WINDOW: no person is that fast
_USER_AGENT_CACHE_SIZE = 4096  # user agents remembered with their verdict...
_USER_AGENT_CACHE_MAX_CHARS = 512  # ...when they are no longer than this

HEAD_REASON = "HEAD request (link checker)"
NO_USER_AGENT_REASON = "no user agent"
EARLY_REASON = f"within {DELIVERY_SCAN_WINDOW:g} s of delivery (security scanner)"
BURST_REASON = f"links clicked together within {BURST_WINDOW:g} s (link scanner)"

# Apple's proxy sends exactly this and nothing more; every real browser says much more.
_APPLE_PRIVACY_PROXY = "Mozilla/5.0"
# One rule per reason; all are tried in a single pass over the user agent (this runs on every
# hit), and the alternative that matches names the reason.
_USER_AGENT_RULES: dict[str, tuple[str, str]] = {
    "gmail": ("Gmail image proxy", r"GoogleImageProxy|ggpht\.com"),
    "yahoo": ("Yahoo Mail image proxy", r"YahooMailProxy"),
    "preview": (
        "link preview robot",
        r"facebookexternalhit|Slackbot|Discordbot|WhatsApp|TelegramBot|SkypeUriPreview"
        r"|LinkedInBot|Twitterbot|redditbot|Iframely|Embedly",
    ),
    "headless": ("headless browser", r"HeadlessChrome|PhantomJS|Puppeteer|Playwright"),
    "library": (
        "HTTP library, not a mail client",
        r"^(?:python-requests|python-httpx|python-urllib|aiohttp|curl|Wget|Go-http-client"
        r"|okhttp|Java|Apache-HttpClient|libwww-perl|axios|node-fetch|undici|Ruby|PHP)\b",
    ),
    "gateway": ("mail security scanner", r"Barracuda|Proofpoint|Mimecast|Forcepoint|Trend ?Micro"),
    # Crawlers name themselves "Somethingbot/1.0"; a version after the name keeps phone models
    # that end in "bot" (CUBOT) out.
    "robot": ("robot", r"(?:bot|crawler|spider|scanner)/\d"),
}
# Matched against the lower-cased user agent: much faster than re.IGNORECASE.
_USER_AGENTS = re.compile(
    "|".join(f"(?P<{name}>{pattern.lower()})" for name, (_, pattern) in _USER_AGENT_RULES.items())
)


def _user_agent_reason(agent: str) -> str | None:
    """The reason a known machine's user agent names, if it is one."""
    known = _USER_AGENTS.search(agent.lower())
    if known is None or known.lastgroup is None:
        return None
    return _USER_AGENT_RULES[known.lastgroup][0]


# A handful of mail clients send most hits, and the pattern's many alternatives made matching
# the costliest step of a pixel hit: verdicts on ordinary user agents are remembered (a long
# one is matched every time, so nobody can fill the cache with megabytes of them).
_remembered_user_agent_reason = functools.lru_cache(maxsize=_USER_AGENT_CACHE_SIZE)(
    _user_agent_reason
)


def machine_reason(
    *,
    method: str,
    user_agent: str | None,
    hit_at: datetime,
    delivered_at: datetime | None,
) -> str | None:
    """Why this single hit is likely a machine's, or None when it looks like a person's."""
    if method == "HEAD":
        return HEAD_REASON
    agent = (user_agent or "").strip()
    if not agent:
        return NO_USER_AGENT_REASON
    if agent == _APPLE_PRIVACY_PROXY:
        return "Apple Mail Privacy Protection proxy"
    if len(agent) <= _USER_AGENT_CACHE_MAX_CHARS:
        known = _remembered_user_agent_reason(agent)
    else:
        known = _user_agent_reason(agent)
    if known is not None:
        return known
    if delivered_at is not None and (hit_at - delivered_at).total_seconds() < DELIVERY_SCAN_WINDOW:
        return EARLY_REASON
    return None


def burst_reason(recent_urls: Iterable[str], tracked_links: int) -> str | None:
    """Why a message's clicks within the last ``BURST_WINDOW`` (this one included), given by
    their URLs, are a machine's; None when they may be a person's."""
    different = len(set(recent_urls))
    if different >= BURST_MIN_LINKS or (tracked_links >= 2 and different >= tracked_links):
        return BURST_REASON
    return None
