"""Rewriting html for tracking: only the tracked hrefs and the pixel change, byte for byte."""

from __future__ import annotations

from mailpass.tracking.rewrite import (
    MAX_TRACKED_LINKS,
    location_header,
    rewrite_html,
    unescape_attribute,
)

PIXEL = "https://t.example/o.gif"
PIXEL_TAG_START = '<img src="https://t.example/o.gif"'


def click_url(index: int) -> str:
    return f"https://t.example/c/{index}"


def rewrite(source: str, *, pixel: bool = True, clicks: bool = True):
    return rewrite_html(
        source, pixel_src=PIXEL if pixel else None, click_url=click_url if clicks else None
    )


def test_only_tracked_hrefs_change_and_everything_else_stays_byte_for_byte():
    source = (
        "<!DOCTYPE html>\r\n<html lang=ja>\r\n<head><style>a{color:red}</style></head>\r\n"
        "<body>\r\n  <p>ご注文ありがとうございます。</p>\r\n"
        '  <a class="btn"  href="https://shop.example/order/1?x=1&amp;y=2"  target=_blank>'
        "注文</a>\r\n"
        "  <A HREF='http://shop.example/help'>Help</A>\r\n"
        "  <a href=https://shop.example/unquoted>u</a>\r\n"
        "</body>\r\n</html>\r\n"
    )
    result = rewrite(source, pixel=False)
    assert result.links == (
        "https://shop.example/order/1?x=1&y=2",
        "http://shop.example/help",
        "https://shop.example/unquoted",
    )
    expected = (
        source.replace('"https://shop.example/order/1?x=1&amp;y=2"', '"https://t.example/c/0"')
        .replace("'http://shop.example/help'", '"https://t.example/c/1"')
        .replace("https://shop.example/unquoted", '"https://t.example/c/2"')
    )
    assert result.html == expected


def test_entities_in_href_are_decoded_as_a_browser_does():
    source = (
        '<a href="https://shop.example/?a=1&amp;b=%20x&#38;c=&quot;q&quot;">1</a>'
        '<a href="https://shop.example/?a=1&copy=2&reg">2</a>'
        '<a href="https://shop.example/caf&eacute;">3</a>'
    )
    assert rewrite(source, pixel=False).links == (
        'https://shop.example/?a=1&b=%20x&c="q"',
        # A legacy entity name followed by "=" stays literal text: it is a query parameter.
        "https://shop.example/?a=1&copy=2®",
        "https://shop.example/café",
    )


def test_unescape_attribute_follows_the_html_standard():
    assert unescape_attribute("a&amp;b") == "a&b"
    assert unescape_attribute("?x=1&copy=2") == "?x=1&copy=2"
    assert unescape_attribute("?x=1&copyx") == "?x=1&copyx"
    assert unescape_attribute("&copy 2026") == "© 2026"
    assert unescape_attribute("&amp") == "&"
    assert unescape_attribute("&#x41;&#66;") == "AB"
    assert unescape_attribute("&nosuchentity;") == "&nosuchentity;"


def test_links_that_must_not_be_tracked_are_left_alone():
    untouched = [
        '<a href="mailto:help@shop.example?subject=Hi">mail</a>',
        '<a href="tel:+81-3-1234-5678">call</a>',
        '<a href="sms:+8112345">sms</a>',
        '<a href="#top">top</a>',
        '<a href="/relative/path">relative</a>',
        '<a href="//evil.example/x">protocol-relative</a>',
        '<a href="javascript:alert(1)">js</a>',
        '<a href=" JaVaScRiPt:alert(1)">js</a>',
        '<a href="data:text/html,<b>x</b>">data</a>',
        '<a href="">empty</a>',
        '<a name="anchor">no href</a>',
        '<a href="https://">no host</a>',
        '<a href="https://shop.example:port/">bad port</a>',
        '<a href="https://shop.example/a b">space</a>',
        '<a data-mailpass-track="off" href="https://shop.example/unsubscribe">u</a>',
        '<a href="https://shop.example/private" data-mailpass-track="false">p</a>',
        '<a clicktracking=off href="https://shop.example/sg">sendgrid style</a>',
        '<!-- <a href="https://shop.example/commented">c</a> -->',
        '<!--[if mso]><v:roundrect href="https://shop.example/vml"><![endif]-->',
        "<script>var a = '<a href=\"https://shop.example/script\">';</script>",
        '<style>a[href="https://shop.example/style"]{}</style>',
    ]
    source = "<body>" + "\n".join(untouched) + "</body>"
    result = rewrite(source, pixel=False)
    assert result.links == ()
    assert result.html == source


def test_the_same_url_is_tracked_once_and_areas_count():
    source = (
        '<a href="https://shop.example/x">logo</a>'
        '<map><area shape=rect coords="0,0,1,1" href="https://shop.example/y"/></map>'
        '<a href="https://shop.example/x">button</a>'
    )
    result = rewrite(source, pixel=False)
    assert result.links == ("https://shop.example/x", "https://shop.example/y")
    assert result.html.count('"https://t.example/c/0"') == 2
    assert 'href="https://t.example/c/1"/>' in result.html


def test_the_first_of_repeated_href_attributes_is_the_link():
    source = '<a href="https://shop.example/first" href="https://evil.example/second">x</a>'
    result = rewrite(source, pixel=False)
    assert result.links == ("https://shop.example/first",)
    assert result.html == '<a href="https://t.example/c/0" href="https://evil.example/second">x</a>'


def test_whitespace_around_and_newlines_inside_an_href_are_dropped_like_a_browser_does():
    result = rewrite('<a href="  https://shop.example/very/\nlong?x=1\t ">x</a>', pixel=False)
    assert result.links == ("https://shop.example/very/long?x=1",)


def test_pixel_goes_before_the_real_closing_body_tag():
    source = "<html><body><p>Hi</p><!-- </body> --></BODY>\n</html>"
    result = rewrite(source, clicks=False)
    assert result.html.startswith("<html><body><p>Hi</p><!-- </body> -->" + PIXEL_TAG_START)
    assert result.html.endswith(" /></BODY>\n</html>")
    assert result.links == ()


def test_pixel_goes_before_closing_html_without_a_body_tag_else_at_the_end():
    assert rewrite("<html><p>Hi</p></html>", clicks=False).html.startswith(
        "<html><p>Hi</p>" + PIXEL_TAG_START
    )
    fragment = rewrite("<p>Hi</p>", clicks=False).html
    assert fragment.startswith("<p>Hi</p>" + PIXEL_TAG_START)
    assert fragment.endswith("/>")


def test_pixel_only_leaves_links_as_they_are():
    source = '<body><a href="https://shop.example/">x</a></body>'
    result = rewrite(source, clicks=False)
    pixel = result.html[result.html.index("<img") : result.html.index("</body>")]
    assert pixel.startswith(PIXEL_TAG_START)
    assert pixel.endswith(" />")
    assert pixel.count("<") == 1
    assert result.html == source.replace("</body>", pixel + "</body>")


def test_links_past_the_limit_stay_untracked():
    source = "".join(
        f'<a href="https://shop.example/{index}">x</a>' for index in range(MAX_TRACKED_LINKS + 2)
    )
    result = rewrite(source, pixel=False)
    assert len(result.links) == MAX_TRACKED_LINKS
    assert f'"https://shop.example/{MAX_TRACKED_LINKS}"' in result.html
    assert '"https://shop.example/0"' not in result.html


def test_unclosed_markup_at_the_end_is_kept():
    source = '<p>Hi <a href="https://shop.example/">x</a> <a href="https://shop.example/cut'
    result = rewrite(source, pixel=False)
    assert result.links == ("https://shop.example/",)
    assert result.html.endswith('<a href="https://shop.example/cut')


def test_location_header_is_ascii():
    assert location_header("https://shop.example/a?b=1&c=%20") == "https://shop.example/a?b=1&c=%20"
    assert location_header("https://bücher.example/café?q=ü#ä") == (
        "https://xn--bcher-kva.example/caf%C3%A9?q=%C3%BC#%C3%A4"
    )
