//! The CSRF guard: origin checks, synchronizer tokens by header and form, pre-session
//! double submit, exemptions.

use axum::body::Body;
use countersign_axum::{CookieConfig, issue_pre_session_csrf};
use http::header;

use crate::common::*;

const FORM: &str = "application/x-www-form-urlencoded";

/// A POST to `uri` with the session cookie.
fn with_session(fx: &Fx, uri: &str, cookie: &str) -> http::request::Builder {
    post_req(uri).header(header::COOKIE, fx.session_cookie(cookie))
}

#[tokio::test]
async fn safe_methods_pass_without_a_token() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    for method in ["GET", "HEAD"] {
        let r = fx
            .call(
                get_req("/protected")
                    .method(method)
                    .header(header::COOKIE, fx.session_cookie(&cookie))
                    .header("sec-fetch-site", "cross-site")
                    .header(header::ORIGIN, "https://evil.example")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        r.assert_ok();
    }
}

#[tokio::test]
async fn missing_token_is_refused() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    let r = fx
        .call(
            with_session(&fx, "/act", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
    // A form without the field, too.
    let r = fx
        .call(
            with_session(&fx, "/submit", &cookie)
                .header(header::CONTENT_TYPE, FORM)
                .body(Body::from("note=hi"))
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
    // DELETE is a state change like POST.
    let r = fx
        .call(
            with_session(&fx, "/act", &cookie)
                .method("DELETE")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
}

#[tokio::test]
async fn wrong_token_is_refused() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    // Another session's token is as wrong as any other.
    let (_, other) = fx.session(&fx.alice).await;
    for token in [other.csrf_token.as_str(), "", "x"] {
        let r = fx
            .call(
                with_session(&fx, "/act", &cookie)
                    .header("x-csrf-token", token)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        r.assert_rejection(403, None, CSRF_FAILED);
    }
    let r = fx
        .call(
            with_session(&fx, "/submit", &cookie)
                .header(header::CONTENT_TYPE, FORM)
                .body(Body::from(format!("csrf_token={}", other.csrf_token)))
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
}

#[tokio::test]
async fn right_token_in_the_header() {
    let fx = fixture().await;
    let (cookie, record) = fx.session(&fx.alice).await;
    let r = fx
        .call(
            with_session(&fx, "/act", &cookie)
                .header("X-CSRF-Token", &record.csrf_token)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.body, "done by alice");
    // The guard's lookup is reused by the extractor: one load, not two.
    assert_eq!(fx.store.calls("load_session"), 1);
}

#[tokio::test]
async fn right_token_in_the_form_and_the_handler_gets_the_body() {
    let fx = fixture().await;
    let (cookie, record) = fx.session(&fx.alice).await;
    let body = format!("note=hello+world&csrf_token={}&n=%C3%A9", record.csrf_token);
    let r = fx
        .call(
            with_session(&fx, "/submit", &cookie)
                .header(
                    header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded; charset=UTF-8",
                )
                .header(header::CONTENT_LENGTH, body.len())
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    r.assert_ok();
    let json = r.json();
    assert_eq!(json["user"], "alice");
    assert_eq!(json["form"]["note"], "hello world");
    assert_eq!(json["form"]["n"], "é");
    assert_eq!(json["form"]["csrf_token"], record.csrf_token.as_str());
}

#[tokio::test]
async fn form_over_the_limit_is_413() {
    let fx = fixture().await;
    let (cookie, record) = fx.session(&fx.alice).await;
    let body = format!(
        "csrf_token={}&note={}",
        record.csrf_token,
        "a".repeat(64 * 1024)
    );
    // With and without a declared length (a chunked body is counted as it is read).
    for declare in [true, false] {
        let mut b = with_session(&fx, "/submit", &cookie).header(header::CONTENT_TYPE, FORM);
        if declare {
            b = b.header(header::CONTENT_LENGTH, body.len());
        }
        let r = fx.call(b.body(Body::from(body.clone())).unwrap()).await;
        r.assert_rejection(
            413,
            None,
            r#"{"error":"payload_too_large","message":"The form body is larger than 64 KiB."}"#,
        );
    }
    // The header route has no limit of ours.
    let r = fx
        .call(
            with_session(&fx, "/submit", &cookie)
                .header(header::CONTENT_TYPE, FORM)
                .header("x-csrf-token", &record.csrf_token)
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    r.assert_ok();
}

/// One row of the origin decision table (csrf.rs module docs): a session POST to `uri`
/// with the session's token and these `Sec-Fetch-Site` / `Origin` headers.
async fn origin_row(fx: &Fx, uri: &str, site: Option<&str>, origin: Option<&str>) -> Reply {
    let (cookie, record) = fx.session(&fx.alice).await;
    let mut request = with_session(fx, uri, &cookie).header("x-csrf-token", &record.csrf_token);
    if let Some(site) = site {
        request = request.header("sec-fetch-site", site);
    }
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    fx.call(request.body(Body::empty()).unwrap()).await
}

fn assert_verdict(r: &Reply, ok: bool, row: &str) {
    if ok {
        assert_eq!(r.status.as_u16(), 200, "{row}: {r:?}");
    } else {
        assert_eq!(r.status.as_u16(), 403, "{row}: {r:?}");
        r.assert_rejection(403, None, CSRF_FAILED);
    }
}

#[tokio::test]
async fn sec_fetch_site_decides_when_present() {
    let fx = fixture().await;
    // (Sec-Fetch-Site, Origin, passes). The fixture allows https://app.example.
    let rows: &[(&str, Option<&str>, bool)] = &[
        ("same-origin", None, true),
        ("same-origin", Some("null"), true),
        ("same-origin", Some("http://auth.example"), true),
        ("SAME-ORIGIN", None, true),
        ("none", None, true),
        ("none", Some("null"), true),
        ("same-site", Some("https://app.example"), true),
        ("same-site", Some("HTTPS://App.Example:443"), true),
        ("same-site", None, false),
        ("same-site", Some("null"), false),
        ("same-site", Some("https://other.example"), false),
        ("cross-site", None, false),
        ("cross-site", Some("https://app.example"), false),
        ("cross-site", Some("http://auth.example"), false),
        ("", None, false),
        ("same-origin-ish", None, false),
    ];
    for (site, origin, ok) in rows {
        let r = origin_row(&fx, "/act", Some(site), *origin).await;
        assert_verdict(&r, *ok, &format!("{site} / {origin:?}"));
    }
    // Two Sec-Fetch-Site headers: refused.
    let (cookie, record) = fx.session(&fx.alice).await;
    let r = fx
        .call(
            with_session(&fx, "/act", &cookie)
                .header("x-csrf-token", &record.csrf_token)
                .header("sec-fetch-site", "same-origin")
                .header("sec-fetch-site", "same-origin")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
}

#[tokio::test]
async fn same_origin_with_origin_null_still_needs_the_token() {
    // The row that `Referrer-Policy: no-referrer` produces: the origin check passes, the
    // synchronizer token is still required.
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    let r = fx
        .call(
            with_session(&fx, "/act", &cookie)
                .header("sec-fetch-site", "same-origin")
                .header(header::ORIGIN, "null")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
    let (cookie, _) = fx.session(&fx.alice).await;
    let (_, other) = fx.session(&fx.root).await;
    let r = fx
        .call(
            with_session(&fx, "/act", &cookie)
                .header("sec-fetch-site", "same-origin")
                .header(header::ORIGIN, "null")
                .header("x-csrf-token", &other.csrf_token)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
}

#[tokio::test]
async fn origin_decides_without_sec_fetch_site() {
    let fx = fixture().await;
    // The request arrived at https://auth.example (the URI names the scheme): the same
    // rows as always hold.
    for (origin, ok) in [
        ("https://auth.example", true),
        ("HTTPS://Auth.Example", true),
        ("https://auth.example:443", true),
        ("https://auth.example/", true),
        ("https://app.example", true),
        ("https://evil.example", false),
        ("http://auth.example", false),
        ("https://auth.example.evil", false),
        ("https://auth.example:8443", false),
        ("null", false),
        ("NULL", false),
    ] {
        let r = origin_row(&fx, "https://auth.example/act", None, Some(origin)).await;
        assert_verdict(&r, ok, origin);
    }
    // No Origin and no Sec-Fetch-Site: no browser sent it; the token decides.
    let r = origin_row(&fx, "/act", None, None).await;
    r.assert_ok();
    // Without a Host there is no own origin to match.
    let (cookie, record) = fx.session(&fx.alice).await;
    let r = fx
        .call(
            http::Request::builder()
                .method("POST")
                .uri("/act")
                .header(header::COOKIE, fx.session_cookie(&cookie))
                .header(header::ORIGIN, "https://auth.example")
                .header("x-csrf-token", &record.csrf_token)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
    // Two Origin headers: refused.
    let r = fx
        .call(
            with_session(&fx, "/act", &cookie)
                .header(header::ORIGIN, "https://auth.example")
                .header(header::ORIGIN, "https://auth.example")
                .header("x-csrf-token", &record.csrf_token)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
}

#[tokio::test]
async fn own_origin_is_where_the_request_arrived_not_the_cookie_mode() {
    // Secure cookies served over plain HTTP (the server's default at 127.0.0.1): the
    // browser's origin is http://…, and that is the request's own origin.
    for cookies in [CookieConfig::secure(), CookieConfig::insecure()] {
        let fx = fixture_with(cookies.clone()).await;
        for (origin, ok) in [
            ("http://auth.example", true),
            ("http://auth.example:80", true),
            ("https://auth.example", false),
            ("http://auth.example:8080", false),
        ] {
            let r = origin_row(&fx, "/act", None, Some(origin)).await;
            assert_verdict(&r, ok, &format!("{cookies:?} {origin}"));
        }
    }
}

#[tokio::test]
async fn bearer_requests_are_exempt() {
    let fx = fixture().await;
    let token = fx.token(&fx.alice).await;
    let (cookie, _) = fx.session(&fx.root).await;
    let r = fx
        .call(
            post_req("/act")
                .header(header::AUTHORIZATION, bearer(&token))
                .header(header::COOKIE, fx.session_cookie(&cookie))
                .header("sec-fetch-site", "cross-site")
                .header(header::ORIGIN, "https://evil.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.body, "done by alice");
    // A non-bearer Authorization header earns no exemption.
    let r = fx
        .call(
            post_req("/act")
                .header(header::AUTHORIZATION, "Basic YTpi")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
}

#[tokio::test]
async fn pre_session_double_submit() {
    let fx = fixture().await;
    let (set_cookie, token) = issue_pre_session_csrf(&fx.state);
    let set_cookie = set_cookie.to_str().unwrap().to_owned();
    assert!(
        set_cookie.starts_with("__Host-countersign-csrf=")
            && set_cookie.ends_with("; Path=/; HttpOnly; Secure; SameSite=Lax"),
        "{set_cookie}"
    );
    let pair = set_cookie.split(';').next().unwrap().to_owned();
    let login = |cookie: Option<&str>, field: &str| {
        let mut b = post_req("/login").header(header::CONTENT_TYPE, FORM);
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        b.body(Body::from(format!("username=alice&csrf_token={field}")))
            .unwrap()
    };

    let r = fx.call(login(Some(&pair), &token)).await;
    r.assert_ok();
    assert_eq!(r.json()["form"]["username"], "alice");
    assert_eq!(r.json()["user"], serde_json::Value::Null);

    // Wrong token, no cookie, another pair's cookie, a forged cookie.
    let (other_cookie, other_token) = issue_pre_session_csrf(&fx.state);
    let other = other_cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let forged = format!("__Host-countersign-csrf={token}.{}", "A".repeat(43));
    for (cookie, field) in [
        (Some(pair.as_str()), "wrong"),
        (Some(pair.as_str()), other_token.as_str()),
        (None, token.as_str()),
        (Some(other.as_str()), token.as_str()),
        (Some(forged.as_str()), token.as_str()),
    ] {
        let r = fx.call(login(cookie, field)).await;
        r.assert_rejection(403, None, CSRF_FAILED);
    }
    // The header works for the pre-session token too.
    let r = fx
        .call(
            post_req("/login")
                .header(header::COOKIE, &pair)
                .header("x-csrf-token", &token)
                .header(header::CONTENT_TYPE, FORM)
                .body(Body::from("username=alice"))
                .unwrap(),
        )
        .await;
    r.assert_ok();
}

#[tokio::test]
async fn a_live_session_needs_its_own_token_not_a_pre_session_one() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    let (set_cookie, token) = issue_pre_session_csrf(&fx.state);
    let pair = set_cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = fx
        .call(
            post_req("/login")
                .header(
                    header::COOKIE,
                    format!("{}; {pair}", fx.session_cookie(&cookie)),
                )
                .header(header::CONTENT_TYPE, FORM)
                .body(Body::from(format!("csrf_token={token}")))
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
}

#[tokio::test]
async fn an_ended_session_falls_back_to_the_pre_session_token_and_is_cleared() {
    let fx = fixture().await;
    let (cookie, record) = fx.session(&fx.alice).await;
    fx.auth.end_session(&record.key).await.unwrap();
    let (set_cookie, token) = issue_pre_session_csrf(&fx.state);
    let pair = set_cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = fx
        .call(
            post_req("/login")
                .header(
                    header::COOKIE,
                    format!("{}; {pair}", fx.session_cookie(&cookie)),
                )
                .header(header::CONTENT_TYPE, FORM)
                .body(Body::from(format!("csrf_token={token}")))
                .unwrap(),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.json()["user"], serde_json::Value::Null);
    assert_eq!(
        r.set_cookies(),
        ["__Host-countersign=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"]
    );
    // The session's old token is no good either.
    let r = fx
        .call(
            with_session(&fx, "/act", &cookie)
                .header("x-csrf-token", &record.csrf_token)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
    assert!(
        r.set_cookies()
            .contains(&"__Host-countersign=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
    );
}

#[tokio::test]
async fn a_handler_setting_a_new_session_is_not_undone() {
    use std::sync::Arc;

    use axum::Router;
    use axum::routing::post;
    use countersign_axum::{AuthState, CsrfLayer, MaybeAuthenticated};

    // A login handler that replaces a stale session cookie with a new one.
    let fx = fixture().await;
    let alice = fx.alice.clone();
    let app = Router::new()
        .route(
            "/login",
            post(
                move |axum::extract::State(state): axum::extract::State<Arc<AuthState>>,
                      MaybeAuthenticated(_): MaybeAuthenticated| {
                    let alice = alice.clone();
                    async move {
                        let (value, record) =
                            state.auth.start_session(&alice, "", "").await.unwrap();
                        let ttl = record.absolute_deadline.secs() - state.auth.now().secs();
                        [(
                            header::SET_COOKIE,
                            state.cookies.session_cookie(&value, ttl),
                        )]
                    }
                },
            ),
        )
        .layer(CsrfLayer::new(Arc::clone(&fx.state)))
        .with_state(Arc::clone(&fx.state));
    let (cookie, record) = fx.session(&fx.alice).await;
    fx.auth.end_session(&record.key).await.unwrap();
    let (set_cookie, token) = issue_pre_session_csrf(&fx.state);
    let pair = set_cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = call(
        &app,
        post_req("/login")
            .header(
                header::COOKIE,
                format!("{}; {pair}", fx.session_cookie(&cookie)),
            )
            .header("x-csrf-token", token)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    r.assert_ok();
    let cookies = r.set_cookies();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].contains("Max-Age=43200"), "{cookies:?}");
}

#[tokio::test]
async fn skipped_routes_and_unmatched_requests_pass_the_others_are_checked() {
    use std::sync::Arc;

    use axum::Router;
    use axum::routing::post;
    use countersign_axum::CsrfLayer;

    let fx = fixture().await;
    let routes = || {
        Router::new()
            .route("/token", post(|| async { "token" }))
            .route("/items/{id}", post(|| async { "item" }))
            .fallback(|| async { (http::StatusCode::NOT_FOUND, "none") })
    };
    let skipping = routes().layer(
        CsrfLayer::new(Arc::clone(&fx.state))
            .skip_routes(["/token"])
            .skip_unmatched(),
    );
    let strict = routes().layer(CsrfLayer::new(Arc::clone(&fx.state)));
    // A cross-site POST with no token: only the skipped route and, with
    // `skip_unmatched`, the fallback are reached.
    let cross_site = |uri: &str| {
        post_req(uri)
            .header("sec-fetch-site", "cross-site")
            .body(Body::empty())
            .unwrap()
    };
    let r = call(&skipping, cross_site("/token")).await;
    assert_eq!((r.status, r.body.as_str()), (http::StatusCode::OK, "token"));
    // The pattern is matched, not a prefix of the path, and a parameter route is checked.
    assert_eq!(
        call(&skipping, cross_site("/token/x")).await.status,
        http::StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&skipping, cross_site("/items/1")).await.status,
        http::StatusCode::FORBIDDEN
    );
    for uri in ["/token", "/items/1", "/nowhere"] {
        let r = call(&strict, cross_site(uri)).await;
        assert_eq!(r.status, http::StatusCode::FORBIDDEN, "{uri}: {r:?}");
    }
}

/// A session POST from `peer` with these headers, through a router whose state trusts
/// 127.0.0.1 as a proxy.
async fn via_peer(fx: &Fx, peer: &str, headers: &[(&str, &str)]) -> Reply {
    use std::sync::Arc;
    let state = Arc::new(
        countersign_axum::AuthState::new(Arc::clone(&fx.auth), CookieConfig::secure())
            .with_trusted_proxies("127.0.0.1/32".parse().unwrap()),
    );
    let app = router(state);
    let (cookie, record) = fx.session(&fx.alice).await;
    let mut request = with_session(fx, "/act", &cookie).header("x-csrf-token", &record.csrf_token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Body::empty()).unwrap();
    let peer: std::net::SocketAddr = format!("{peer}:40000").parse().unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    call(&app, request).await
}

#[tokio::test]
async fn a_trusted_proxy_reports_the_scheme_and_host() {
    let fx = fixture().await;
    let tls = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "login.example"),
        (header::ORIGIN.as_str(), "https://login.example"),
    ];
    via_peer(&fx, "127.0.0.1", &tls).await.assert_ok();
    let forwarded = [
        ("forwarded", "for=192.0.2.7;proto=https;host=login.example"),
        (header::ORIGIN.as_str(), "https://login.example"),
    ];
    via_peer(&fx, "127.0.0.1", &forwarded).await.assert_ok();
    // The same headers from a peer that is not a trusted proxy change nothing: the own
    // origin stays http://auth.example.
    via_peer(&fx, "192.0.2.50", &tls)
        .await
        .assert_rejection(403, None, CSRF_FAILED);
    via_peer(
        &fx,
        "192.0.2.50",
        &[
            ("x-forwarded-proto", "https"),
            (header::ORIGIN.as_str(), "http://auth.example"),
        ],
    )
    .await
    .assert_ok();
}

#[tokio::test]
async fn browsers_get_a_page_api_clients_json() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    let r = fx
        .call(
            with_session(&fx, "/act", &cookie)
                .header(
                    header::ACCEPT,
                    "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
                )
                .header("sec-fetch-site", "cross-site")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status.as_u16(), 403);
    assert!(
        r.header("content-type").unwrap().starts_with("text/html"),
        "{r:?}"
    );
    assert!(r.body.contains("reload the page and try again"), "{r:?}");
    // The same request asking for JSON gets the contract's JSON.
    let r = fx
        .call(
            with_session(&fx, "/act", &cookie)
                .header(header::ACCEPT, "application/json")
                .header("sec-fetch-site", "cross-site")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
}

#[tokio::test]
async fn the_pre_session_cookie_is_kept_while_good() {
    let fx = fixture().await;
    let (first, token) = issue_pre_session_csrf(&fx.state);
    let value = first
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut headers = http::HeaderMap::new();
    headers.insert(header::COOKIE, value.parse().unwrap());
    // A second view of the form keeps the cookie and shows the same token.
    let (again, shown) = countersign_axum::pre_session_csrf(&fx.state, &headers);
    assert!(again.is_none());
    assert_eq!(shown, token);
    // An expired or foreign cookie is replaced.
    fx.clock
        .advance(countersign::auth::PRE_SESSION_CSRF_TTL_SECS);
    let (replaced, fresh) = countersign_axum::pre_session_csrf(&fx.state, &headers);
    assert!(replaced.is_some());
    assert_ne!(fresh, token);
    headers.insert(
        header::COOKIE,
        format!(
            "{}=forged.1.{}",
            fx.state.cookies.csrf_name(),
            "A".repeat(43)
        )
        .parse()
        .unwrap(),
    );
    let (replaced, _) = countersign_axum::pre_session_csrf(&fx.state, &headers);
    assert!(replaced.is_some());
}
