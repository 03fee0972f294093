"""What tracking tests read from delivered mail, and the constants they share."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

PUBLIC_URL = "https://track.shop.example"
BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
TRACK_BOTH = {"track_opens": True, "track_clicks": True}


class Anchors(HTMLParser):
    """The test's own reading of delivered html: every <a href> and <img src>, decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "a" and "href" in values:
            self.hrefs.append(values["href"])
        if tag == "img" and "src" in values:
            self.images.append(values["src"])


def read_html(html):
    anchors = Anchors()
    anchors.feed(html)
    anchors.close()
    return anchors


def html_of(received):
    """The html part of a mail the SMTP server received, as text (SMTP's CRLF line ends as
    the client's LF)."""
    return received.message.get_body(preferencelist=("html",)).get_content().replace("\r\n", "\n")


def tracking_path(url):
    """The path of a tracking URL, which must point at the public URL."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL, url
    return parts.path
