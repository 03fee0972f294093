"""Rewriting a message's html for tracking: links through the click route, a pixel at the end.

The html is read with the standard library's HTML tokenizer (``html.parser``), so comments
(Outlook's conditional comments included), ``<script>`` and ``<style>`` contents, and attribute
values with entities are understood as a browser would. Only the ``href`` values that are
rewritten and the pixel are changed; every other byte of the document stays as it was.

Rewritten: ``href`` of ``<a>`` and ``<area>`` when it is an absolute ``http:`` or ``https:`` URL.
Left alone: ``mailto:``, ``tel:`` and every other scheme (``javascript:`` included), fragment-only
and relative links (an e-mail has no base to resolve them against), links marked with
``data-mailpass-track="off"`` (or SendGrid's ``clicktracking="off"``), and links beyond the
first ``MAX_TRACKED_LINKS`` different URLs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.entities import html5 as html5_entities
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = [
    "MAX_TRACKED_LINKS",
    "RewrittenHtml",
    "location_header",
    "normalize_link",
    "rewrite_html",
    "unescape_attribute",
]

MAX_TRACKED_LINKS = 1000  # different URLs per message; later ones are left untracked
MAX_URL_CHARS = 8192  # longer URLs are left alone (and would not fit most redirect headers)

# Attributes that opt a single link out of click tracking, with the values that mean "off".
_SKIP_ATTRIBUTES = ("data-mailpass-track", "clicktracking")
_OFF_VALUES = frozenset({"off", "false", "no", "0"})
_LINK_TAGS = frozenset({"a", "area"})
_HTML_WHITESPACE = " \t\n\r\f"
# The URL standard drops these wherever they occur; a browser would follow the URL without them.
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_TRACKABLE_SCHEME = re.compile(r"(?i)https?://")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_CHARACTER_REFERENCE = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")
_NAMED_REFERENCES = html5_entities
# Printable ASCII that may stay as it is in a URL ("%" too: existing escapes are kept).
_URL_SAFE = "!#$%&'()*+,-./:;=?@[]_~"

# Display it as a block so that no client gives it a line of its own; no display:none, which
# some clients take as a reason not to load it.
_PIXEL = (
    '<img src="{src}" width="1" height="1" alt="" border="0" '
    'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0" />'
)


@dataclass(frozen=True, slots=True)
class RewrittenHtml:
    html: str
    links: tuple[str, ...]  # the tracked URLs; a click token's link index points into this
    pixel_added: bool


def normalize_link(value: str) -> str | None:
    """The URL a browser would follow for this ``href`` value, if it is one we track."""
    url = _TAB_OR_NEWLINE.sub("", value.strip(_HTML_WHITESPACE))
    if len(url) > MAX_URL_CHARS or not _TRACKABLE_SCHEME.match(url):
        return None
    if _CONTROL_OR_SPACE.search(url):
        return None  # a space or control character in a URL: not a link we can vouch for
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        return None
    if not host:
        return None
    return url


def location_header(url: str) -> str:
    """``url`` as an HTTP ``Location``, which must be ASCII: an internationalised host as
    punycode, other non-ASCII characters percent-encoded (as a browser would send them)."""
    if url.isascii():
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if not netloc.isascii():
        userinfo, at, hostport = netloc.rpartition("@")
        host, colon, port = hostport.partition(":")
        if hostport.startswith("["):  # an IPv6 literal is ASCII; only userinfo can be here
            host, colon, port = hostport, "", ""
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            host = quote(host, safe=_URL_SAFE)
        netloc = quote(userinfo, safe=_URL_SAFE) + at + host + colon + port
    return urlunsplit(
        (
            parts.scheme,
            netloc,
            quote(parts.path, safe=_URL_SAFE),
            quote(parts.query, safe=_URL_SAFE),
            quote(parts.fragment, safe=_URL_SAFE),
        )
    )


def rewrite_html(
    source: str,
    *,
    pixel_src: str | None,
    click_url: Callable[[int], str] | None,
) -> RewrittenHtml:
    """Rewrite tracked links to ``click_url(index)`` and add a pixel loading ``pixel_src``.

    Either may be None to leave links, or the pixel, out. The pixel goes right before the last
    ``</body>``, else before ``</html>``, else at the very end.
    """
    scanner = _Scanner(source)
    scanner.feed(source)
    scanner.close()

    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), in document order
    links: dict[str, int] = {}
    if click_url is not None:
        for link in scanner.links:
            index = links.get(link.url)
            if index is None:
                if len(links) >= MAX_TRACKED_LINKS:
                    continue
                index = links[link.url] = len(links)
            edits.append((link.start, link.end, f'"{html.escape(click_url(index))}"'))
    if pixel_src is not None:
        where = scanner.body_end if scanner.body_end is not None else scanner.html_end
        position = len(source) if where is None else where
        edits.append((position, position, _PIXEL.format(src=html.escape(pixel_src))))

    pieces: list[str] = []
    done = 0
    for start, end, replacement in sorted(edits, key=lambda edit: edit[0]):
        pieces.append(source[done:start])
        pieces.append(replacement)
        done = end
    pieces.append(source[done:])
    return RewrittenHtml("".join(pieces), tuple(links), pixel_src is not None)


@dataclass(frozen=True, slots=True)
class _Link:
    url: str
    start: int  # the attribute value's span in the source, quotes included
    end: int


class _Scanner(HTMLParser):
    """Finds the trackable links and the closing body and html tags, with source offsets."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.line_starts = [0]
        self.line_starts.extend(match.end() for match in re.finditer("\n", source))
        self.links: list[_Link] = []
        self.body_end: int | None = None
        self.html_end: int | None = None

    def source_offset(self) -> int:
        # html.parser counts lines by "\n" and columns from the character after it.
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _LINK_TAGS:
            self._link(attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _LINK_TAGS:
            self._link(attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "body":
            self.body_end = self.source_offset()
        elif tag == "html":
            self.html_end = self.source_offset()

    def _link(self, attrs: list[tuple[str, str | None]]) -> None:
        values: dict[str, str | None] = {}
        for name, value in attrs:
            values.setdefault(name, value)  # a browser keeps the first of repeated attributes
        href = values.get("href")
        if href is None:
            return
        for name in _SKIP_ATTRIBUTES:
            flag = values.get(name)
            if flag is not None and flag.strip().lower() in _OFF_VALUES:
                return
        tag_text = self.get_starttag_text()
        span = _href_span(tag_text) if tag_text is not None else None
        if tag_text is None or span is None:
            return
        start, end = span
        raw_value = tag_text[start:end]
        if raw_value[:1] in ("'", '"'):
            raw_value = raw_value[1:-1]
        # Our span must hold exactly what the parser read, or we might edit the wrong bytes.
        if html.unescape(raw_value) != href:
            return
        tag_start = self.source_offset()
        if self.source[tag_start : tag_start + len(tag_text)] != tag_text:
            return
        url = normalize_link(unescape_attribute(raw_value))
        if url is not None:
            self.links.append(_Link(url, tag_start + start, tag_start + end))


def unescape_attribute(value: str) -> str:
    """Character references in an attribute value, decoded as the HTML standard says.

    Unlike ``html.unescape``, a legacy reference without its semicolon stays as it is when a
    letter, digit or "=" follows it: ``?a=1&copy=2`` is a query string, not "?a=1©=2".
    """
    if "&" not in value:
        return value
    return _CHARACTER_REFERENCE.sub(_decode_reference, value)


def _decode_reference(match: re.Match[str]) -> str:
    reference = match.group(1)
    if reference.startswith("#"):
        return html.unescape(match.group(0))  # numeric references decode the same everywhere
    if reference in _NAMED_REFERENCES:
        return _NAMED_REFERENCES[reference]
    # A legacy reference without its semicolon, such as "&amp" or "&copy", followed by more text.
    for cut in range(len(reference) - 1, 1, -1):
        prefix = reference[:cut]
        if prefix in _NAMED_REFERENCES:
            following = reference[cut]
            if following.isalnum() or following == "=":
                return match.group(0)
            return _NAMED_REFERENCES[prefix] + reference[cut:]
    return match.group(0)


def _href_span(tag_text: str) -> tuple[int, int] | None:
    """The span of the first ``href`` attribute's value in a start tag, quotes included.

    Attributes are split as the HTML standard's tokenizer does: a name runs to whitespace, "/",
    ">" or "="; a value is quoted with " or ', or runs unquoted to whitespace or ">".
    """
    length = len(tag_text)
    index = 1
    while index < length and tag_text[index] not in _HTML_WHITESPACE + "/>":
        index += 1  # the tag name
    while index < length:
        while index < length and tag_text[index] in _HTML_WHITESPACE + "/":
            index += 1
        if index >= length or tag_text[index] == ">":
            return None
        name_start = index
        index += 1  # the first character belongs to the name, even "="
        while index < length and tag_text[index] not in _HTML_WHITESPACE + "/>=":
            index += 1
        name = tag_text[name_start:index].lower()
        while index < length and tag_text[index] in _HTML_WHITESPACE:
            index += 1
        if index >= length or tag_text[index] != "=":
            continue  # an attribute without a value
        index += 1
        while index < length and tag_text[index] in _HTML_WHITESPACE:
            index += 1
        value_start = index
        if index < length and tag_text[index] in "\"'":
            closing = tag_text.find(tag_text[index], index + 1)
            if closing < 0:
                return None
            index = closing + 1
        else:
            while index < length and tag_text[index] not in _HTML_WHITESPACE + ">":
                index += 1
        if name == "href":
            return value_start, index
    return None
