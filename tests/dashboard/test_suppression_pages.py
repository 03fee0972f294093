"""Dashboard > Suppressions: search, add and take off addresses; the API then obeys the list."""

from __future__ import annotations


def flat(page: str) -> str:
    return " ".join(page.split())


async def test_addresses_are_added_searched_and_taken_off(signed_in, smtp_sink, app_client):
    browser, account = await signed_in(sink=smtp_sink)
    page = await browser.get("/dashboard/suppressions")
    assert page.status_code == 200
    assert "No suppressed addresses." in page.text
    assert 'href="/dashboard/suppressions" aria-current="page"' in page.text

    added = await browser.post(
        "/dashboard/suppressions", {"email": "Gone@Example.com", "reason": "complaint"}
    )
    assert added.status_code == 303
    page = (await browser.get(added.headers["location"])).text
    assert "Address suppressed" in page
    assert "<td>gone@example.com</td> <td>complaint</td>" in flat(page)
    again = await browser.post("/dashboard/suppressions", {"email": "gone@example.com"})
    assert "was suppressed already" in (await browser.get(again.headers["location"])).text
    await browser.post("/dashboard/suppressions", {"email": "other@example.org"})

    found = (await browser.get("/dashboard/suppressions?search=EXAMPLE.ORG")).text
    assert "other@example.org" in found
    assert "gone@example.com" not in found

    # The API obeys what the page added.
    refused = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "gone@example.com", "subject": "Hi", "text": "x"},
        headers=account.headers,
    )
    assert refused.json()["error"]["code"] == "RECIPIENT_SUPPRESSED"

    taken_off = await browser.post("/dashboard/suppressions/remove", {"email": "gone@example.com"})
    page = (await browser.get(taken_off.headers["location"])).text
    assert "mail goes to it again" in page
    assert "gone@example.com" not in page
    sent = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "gone@example.com", "subject": "Hi", "text": "x"},
        headers=account.headers,
    )
    assert sent.status_code == 200, sent.text


async def test_bad_input_and_foreign_posts_are_refused(signed_in, smtp_sink):
    browser, _account = await signed_in(sink=smtp_sink)
    bad = await browser.post("/dashboard/suppressions", {"email": "not an address"})
    assert bad.status_code == 400
    assert 'role="alert"' in bad.text
    assert 'value="not an address"' in bad.text
    odd = await browser.post("/dashboard/suppressions", {"email": "a@example.com", "reason": "x"})
    assert odd.status_code == 400
    forged = await browser.post(
        "/dashboard/suppressions", {"email": "a@example.com", "csrf_token": "forged"}
    )
    assert forged.status_code == 403
    assert "No suppressed addresses." in (await browser.get("/dashboard/suppressions")).text
