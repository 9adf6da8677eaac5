"""Signing in and out of the dashboard, the session cookie, and CSRF."""

from __future__ import annotations

import httpx

from modelhub.client import Client
from tests.dashboard.conftest import Session, create_token, sign_in
from tests.integration.conftest import ServerProcess


def test_a_page_without_a_session_answers_the_sign_in_form(
    dashboard_server: ServerProcess,
) -> None:
    answer = httpx.get(f"{dashboard_server.url}/account?tab=2")
    assert answer.status_code == 401
    assert 'action="/signin"' in answer.text
    assert 'name="next" value="/account?tab=2"' in answer.text  # back here after signing in
    assert answer.headers["content-type"].startswith("text/html")


def test_a_wrong_token_is_refused_with_the_apis_message_and_no_cookie(
    dashboard_server: ServerProcess,
) -> None:
    with httpx.Client(base_url=dashboard_server.url) as http:
        answer = http.post("/signin", data={"token": "mh_wrong", "next": "/models"})
        assert answer.status_code == 401
        assert 'role="alert"' in answer.text and "token" in answer.text.lower()
        assert "set-cookie" not in answer.headers
        assert http.get("/account").status_code == 401


def test_signing_in_sets_a_strict_httponly_cookie_and_goes_where_it_was_asked(
    dashboard_server: ServerProcess,
) -> None:
    with httpx.Client(base_url=dashboard_server.url) as http:
        answer = http.post("/signin", data={"token": dashboard_server.token, "next": "/training"})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/training"
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie


def test_sign_in_never_redirects_to_another_site(dashboard_server: ServerProcess) -> None:
    with httpx.Client(base_url=dashboard_server.url) as http:
        for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "models"):
            answer = http.post("/signin", data={"token": dashboard_server.token, "next": target})
            assert answer.headers["location"] == "/", target


def test_the_page_names_who_is_signed_in_and_offers_sign_out(admin_session: Session) -> None:
    page = admin_session.get("/account").text
    assert '<dd id="account-role">admin</dd>' in page
    assert "<code>models.register</code>" in page
    assert 'action="/signout"' in page


def test_a_change_without_the_csrf_token_is_refused_and_audited(
    dashboard_server: ServerProcess, admin_session: Session
) -> None:
    refused = admin_session.http.post("/signout", data={})
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    forged = admin_session.http.post("/signout", data={"csrf": "0" * 64})
    assert forged.status_code == 403
    with Client(dashboard_server.url, token=dashboard_server.token) as admin:
        denials = admin.audit_events(action="auth.denied", limit=1000)
    assert any(e.target == "POST /signout" and "CSRF" in e.details["reason"] for e in denials)
    assert admin_session.get("/account").status_code == 200  # still signed in


def test_an_htmx_request_gets_its_error_as_a_fragment(admin_session: Session) -> None:
    answer = admin_session.http.post("/signout", headers={"hx-request": "true"})
    assert answer.status_code == 403
    assert "<html" not in answer.text and "CSRF" in answer.text


def test_signing_out_forgets_the_session(dashboard_server: ServerProcess) -> None:
    session = sign_in(dashboard_server, create_token(dashboard_server, "sess-leaver", "viewer"))
    try:
        answer = session.post("/signout")
        assert answer.status_code == 303 and answer.headers["location"] == "/signin"
        assert session.get("/account").status_code == 401
    finally:
        session.http.close()


def test_a_revoked_token_ends_the_session(dashboard_server: ServerProcess) -> None:
    session = sign_in(dashboard_server, create_token(dashboard_server, "sess-revoked", "viewer"))
    try:
        assert session.get("/account").status_code == 200
        with Client(dashboard_server.url, token=dashboard_server.token) as admin:
            for info in admin.list_tokens("sess-revoked"):
                admin.revoke_token(info.id)
        assert session.get("/account").status_code == 401
    finally:
        session.http.close()


def test_a_script_may_use_a_bearer_token_instead_of_the_cookie(
    dashboard_server: ServerProcess,
) -> None:
    with dashboard_server.http() as http:
        assert http.get("/account").status_code == 200
