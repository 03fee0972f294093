"""The rules that mark a hit as a machine's (see ``mailpass.tracking.machines``)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from mailpass.tracking.machines import burst_reason, machine_reason

DELIVERED = datetime(2026, 1, 30, 12, 0, 0)
LATER = DELIVERED + timedelta(minutes=10)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.9.0"


def reason(user_agent, *, method="GET", at=LATER, delivered=DELIVERED):
    return machine_reason(method=method, user_agent=user_agent, hit_at=at, delivered_at=delivered)


@pytest.mark.parametrize("agent", [IPHONE_SAFARI, THUNDERBIRD, "Mozilla/5.0 (CUBOT P40 Build)"])
def test_people_are_not_machines(agent):
    assert reason(agent) is None


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("Mozilla/5.0", "Apple Mail Privacy Protection proxy"),
        (
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com "
            "GoogleImageProxy)",
            "Gmail image proxy",
        ),
        (
            "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
            "Yahoo Mail image proxy",
        ),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "link preview robot"),
        (
            "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0.0.0 Safari/537.36",
            "headless browser",
        ),
        ("python-requests/2.31.0", "HTTP library, not a mail client"),
        ("curl/8.5.0", "HTTP library, not a mail client"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "robot"),
        ("Barracuda Sentinel (EE)", "mail security scanner"),
        ("", "no user agent"),
        (None, "no user agent"),
    ],
)
def test_known_proxies_and_robots(agent, expected):
    assert reason(agent) == expected


def test_head_requests_are_link_checkers():
    assert reason(IPHONE_SAFARI, method="HEAD") == "HEAD request (link checker)"


def test_hits_within_seconds_of_delivery_are_scanners():
    assert reason(IPHONE_SAFARI, at=DELIVERED + timedelta(seconds=2)) == (
        "within 5 s of delivery (security scanner)"
    )
    assert reason(IPHONE_SAFARI, at=DELIVERED + timedelta(seconds=6)) is None
    assert reason(IPHONE_SAFARI, delivered=None) is None  # not yet sent: nothing to compare


def test_bursts_of_clicks():
    assert burst_reason(["a"], 1) is None
    assert burst_reason(["a", "a", "a"], 5) is None  # one link clicked thrice: a person
    assert burst_reason(["a", "b"], 5) is None
    assert burst_reason(["a", "b"], 2) is not None  # every link of the message
    assert burst_reason(["a", "b", "c"], 10) is not None  # three links in a second
