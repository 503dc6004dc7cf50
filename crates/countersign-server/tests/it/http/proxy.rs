//! The client address through trusted proxies, as the login throttle and the session list
//! use it: from a peer that is not a trusted proxy, `X-Forwarded-For`, `Forwarded` and
//! `X-Forwarded-Proto` / `-Host` change nothing (the default trusts no one); from a trusted
//! proxy (127.0.0.1/32 here) they name the client and the origin the browser is at.

use super::*;

/// The proxy's own address, trusted by [`behind_proxy`].
const PROXY: &str = "127.0.0.1:50000";

/// A server that trusts 127.0.0.1/32, with a per-address throttle of 3 failures a minute.
fn behind_proxy() -> Server {
    Server::with(|c| {
        c.trusted_proxies = "127.0.0.1/32".parse().unwrap();
        c.auth.throttle = small_throttle();
    })
}

fn small_throttle() -> ThrottlePolicy {
    ThrottlePolicy {
        per_account: 100,
        per_address: 3,
        window_secs: 60,
        ..ThrottlePolicy::default()
    }
}

/// `request` with the forwarding `headers` added.
fn forwarded(mut request: Request<Body>, headers: &[(&str, &str)]) -> Request<Body> {
    for (name, value) in headers {
        let name = axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().append(name, value.parse().unwrap());
    }
    request
}

/// Log in as `name` with `password`, every request carrying `headers`.
async fn login_with(
    b: &mut Browser,
    s: &Server,
    headers: &[(&str, &str)],
    name: &str,
    password: &str,
) -> Resp {
    let page = b
        .request(Method::GET, "/login")
        .body(Body::empty())
        .unwrap();
    let token = b.go(s, forwarded(page, headers)).await.form_token();
    let form = b.form(
        "/login",
        &[
            ("username", name),
            ("password", password),
            ("csrf_token", &token),
        ],
    );
    b.go(s, forwarded(form, headers)).await
}

/// The address the session list shows for this browser's session.
async fn listed_ip(b: &mut Browser, s: &Server) -> String {
    let list = b.get(s, "/api/sessions").await.json();
    let current: Vec<&Value> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["current"] == true)
        .collect();
    assert_eq!(current.len(), 1, "{list}");
    current[0]["ip"].as_str().unwrap().to_owned()
}

/// Spoofing headers a client might send to pass for someone else.
const SPOOF: &[(&str, &str)] = &[
    ("x-forwarded-for", "203.0.113.9"),
    (
        "forwarded",
        "for=203.0.113.10;proto=https;host=evil.example",
    ),
    ("x-real-ip", "203.0.113.11"),
];

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_change_nothing() {
    // The default: no trusted proxies at all.
    let s = Server::with(|c| c.auth.throttle = small_throttle());
    s.add_user("alice", "user").await;
    let mut b = Browser::from_addr("192.0.2.1:40000");
    let r = login_with(&mut b, &s, SPOOF, "alice", PW).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(listed_ip(&mut b, &s).await, "192.0.2.1");
    let page = b.get(&s, "/account/sessions").await;
    assert!(page.body.contains("192.0.2.1"), "{page:?}");
    assert!(!page.body.contains("203.0.113."), "{page:?}");

    // The throttle counts the peer, whatever address each attempt claims.
    let mut spray = Browser::from_addr("192.0.2.66:1");
    for (i, name) in ["a1", "a2", "a3"].into_iter().enumerate() {
        let xff = format!("198.51.100.{i}");
        let r = login_with(&mut spray, &s, &[("x-forwarded-for", &xff)], name, "pw1!").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    }
    let r = login_with(
        &mut spray,
        &s,
        &[
            ("x-forwarded-for", "198.51.100.99"),
            ("forwarded", "for=198.51.100.98"),
        ],
        "alice",
        PW,
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    assert!(spray.session().is_none());

    // A claimed scheme and host do not make another site's origin this server's own.
    let mut b = Browser::from_addr("192.0.2.2:40000");
    let token = b.get(&s, "/login").await.form_token();
    let mut req = b.form(
        "/login",
        &[
            ("username", "alice"),
            ("password", PW),
            ("csrf_token", &token),
        ],
    );
    req.headers_mut().remove("sec-fetch-site");
    req.headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    let req = forwarded(
        req,
        &[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "proto=https;host=evil.example"),
        ],
    );
    let r = b.go(&s, req).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "csrf_failed"),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_server_with_trusted_proxies_ignores_the_headers_from_other_peers() {
    let s = behind_proxy();
    s.add_user("alice", "user").await;
    // Straight to the server, not through the proxy.
    let mut b = Browser::from_addr("192.0.2.1:40000");
    let r = login_with(&mut b, &s, SPOOF, "alice", PW).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(listed_ip(&mut b, &s).await, "192.0.2.1");

    let mut spray = Browser::from_addr("192.0.2.66:1");
    for (i, name) in ["a1", "a2", "a3"].into_iter().enumerate() {
        let xff = format!("198.51.100.{i}");
        let r = login_with(&mut spray, &s, &[("x-forwarded-for", &xff)], name, "pw1!").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    }
    let r = login_with(
        &mut spray,
        &s,
        &[("x-forwarded-for", "198.51.100.99")],
        "alice",
        PW,
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_for_the_session_list() {
    let s = behind_proxy();
    s.add_user("alice", "user").await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        // What nginx's $proxy_add_x_forwarded_for sends for a direct client.
        (&[("x-forwarded-for", "203.0.113.9")], "203.0.113.9"),
        // A client-supplied value to the left is not believed: the walk stops at the first
        // address the trusted proxy did not vouch for.
        (
            &[("x-forwarded-for", "198.51.100.1, 203.0.113.9")],
            "203.0.113.9",
        ),
        // Another trusted hop is walked past.
        (
            &[("x-forwarded-for", "203.0.113.9, 127.0.0.1")],
            "203.0.113.9",
        ),
        // The X-Forwarded family wins over a Forwarded header the proxy passed through
        // (nginx, Caddy and Traefik set X-Forwarded-For and leave Forwarded alone).
        (
            &[
                ("forwarded", "for=203.0.113.20;proto=http"),
                ("x-forwarded-for", "203.0.113.9"),
            ],
            "203.0.113.9",
        ),
        (
            &[("forwarded", "for=\"[2001:db8::7]:4711\"")],
            "2001:db8::7",
        ),
        // Nothing forwarded: the proxy itself.
        (&[], "127.0.0.1"),
    ];
    for (headers, ip) in cases {
        let mut b = Browser::from_addr(PROXY);
        let r = login_with(&mut b, &s, headers, "alice", PW).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{headers:?}: {r:?}");
        // The list is read through the proxy too, though the address was stored at login.
        assert_eq!(listed_ip(&mut b, &s).await, *ip, "{headers:?}");
        let page = b.get(&s, "/account/sessions").await;
        assert!(page.body.contains(ip), "{headers:?}: {page:?}");
    }
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_for_the_throttle() {
    let s = behind_proxy();
    s.add_user("alice", "user").await;
    // Three failures from one client behind the proxy fill that client's bucket...
    let mut spray = Browser::from_addr(PROXY);
    let client = [("x-forwarded-for", "203.0.113.50")];
    for name in ["a1", "a2", "a3"] {
        let r = login_with(&mut spray, &s, &client, name, "pw1!").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    }
    let r = login_with(&mut spray, &s, &client, "alice", PW).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    // ...and only that client's: another client through the same proxy logs in, and so
    // does the proxy's own address.
    let mut other = Browser::from_addr(PROXY);
    let r = login_with(
        &mut other,
        &s,
        &[("x-forwarded-for", "203.0.113.51")],
        "alice",
        PW,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    let mut direct = Browser::from_addr(PROXY);
    let r = login_with(&mut direct, &s, &[], "alice", PW).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
}

#[tokio::test]
async fn a_trusted_proxy_reports_the_origin_the_browser_is_at() {
    let s = behind_proxy();
    s.add_user("alice", "user").await;
    // nginx with TLS in front: the browser is at https://auth.example.
    let proxy_headers = [
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "auth.example"),
    ];
    let post = |b: &Browser, token: &str, origin: &str| {
        let mut req = b.form(
            "/login",
            &[
                ("username", "alice"),
                ("password", PW),
                ("csrf_token", token),
            ],
        );
        // A browser without Sec-Fetch-Site: Origin decides.
        req.headers_mut().remove("sec-fetch-site");
        req.headers_mut()
            .insert(header::ORIGIN, origin.parse().unwrap());
        forwarded(req, &proxy_headers)
    };
    let mut b = Browser::from_addr(PROXY);
    let page = b
        .request(Method::GET, "/login")
        .body(Body::empty())
        .unwrap();
    let token = b.go(&s, forwarded(page, &proxy_headers)).await.form_token();
    // The origin the proxy's connection came in on is not the browser's.
    let r = b.go(&s, post(&b, &token, "http://localhost")).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "csrf_failed"),
        "{r:?}"
    );
    let r = b.go(&s, post(&b, &token, "https://evil.example")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    let r = b.go(&s, post(&b, &token, "https://auth.example")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(listed_ip(&mut b, &s).await, "203.0.113.9");
}
