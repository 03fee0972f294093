"""Errors are pages on the dashboard, while the API keeps its JSON envelope."""

from __future__ import annotations


async def test_unknown_dashboard_paths_are_html_pages(signed_in):
    browser, _ = await signed_in()
    page = await browser.get("/dashboard/nowhere")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


async def test_the_api_still_answers_in_its_envelope(app_client):
    missing = await app_client.get("/api/v1/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    wrong_method = await app_client.get("/api/v1/mail/send")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_the_root_leads_to_the_dashboard(app_client):
    answer = await app_client.get("/")
    assert answer.status_code == 307
    assert answer.headers["location"] == "/dashboard/"


async def test_static_files_are_served(app_client):
    css = await app_client.get("/dashboard/static/dashboard.css")
    assert css.status_code == 200
    assert "text/css" in css.headers["content-type"]
    assert (await app_client.get("/dashboard/static/nope.css")).status_code == 404
