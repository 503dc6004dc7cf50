//! Forward authentication in-process: `/auth/request` (nginx) and `/auth/forward` (Traefik,
//! Caddy) against the access rules, the identity headers and the signed assertion, the
//! trusted-proxy rule, `/login?rd=` and `/logout?rd=`, and the session cookie shared with
//! subdomains (`--cookie-domain`). The same parts through real nginx and Caddy, in
//! Chromium, are in `browser/forward_auth.rs`.

use countersign::jwt::{self, Validation};
use countersign_server::access::{AccessRules, RawRule};
use countersign_server::redirect::DomainPattern;

use super::*;

/// The proxy's address (trusted).
const PROXY: &str = "127.0.0.1:50001";
const APP: &str = "https://app.example.test";

pub(super) fn rule(
    host: Option<&str>,
    path: &str,
    methods: Option<&[&str]>,
    policy: &str,
) -> RawRule {
    RawRule {
        name: None,
        host: host.map(str::to_owned),
        path: Some(path.to_owned()),
        methods: methods.map(|m| m.iter().map(|s| (*s).to_owned()).collect()),
        policy: Some(policy.to_owned()),
    }
}

/// The rules these tests run with: `/admin` for admins, `/public` for all, `/blocked`
/// for none, DELETE on `/api/` for admins, anything else for any logged-in user.
fn rules() -> AccessRules {
    AccessRules::new(
        &[
            rule(Some("app.example.test"), "/admin", None, "role:admin"),
            rule(None, "/public", None, "public"),
            rule(None, "/blocked", None, "deny"),
            rule(None, "/api/", Some(&["DELETE"]), "role:admin"),
        ],
        None,
    )
    .unwrap()
}

/// A server behind a trusted proxy at 127.0.0.1, reached by browsers at
/// `https://auth.example.test`, sending them back to `*.example.test`; its key.
pub(super) fn forward_server(tune: impl FnOnce(&mut ServeConfig)) -> (Server, KeyRing) {
    let mut config = test_config();
    config.trusted_proxies = "127.0.0.1/32".parse().unwrap();
    config.public_urls = vec!["https://auth.example.test".to_owned()];
    config.forward.access = rules();
    config.forward.domains = vec![DomainPattern::parse("*.example.test").unwrap()];
    tune(&mut config);
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(UnixTime(T0));
    let key = SecretKey::generate(32).unwrap().0;
    let app = App::new(
        &config,
        KeyRing::single(key.clone()),
        store.clone(),
        store,
        Arc::new(clock.clone()),
        Some(metrics()),
    )
    .unwrap();
    (
        Server {
            router: router(app.clone()),
            app,
            clock,
        },
        KeyRing::single(key),
    )
}

/// A forward-auth request for `method url`, from `peer`, with `headers`.
fn asking(endpoint: &str, peer: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get(endpoint).extension(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

/// nginx's headers for `method url`.
fn nginx(method: &str, url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-original-method", method.to_owned()),
        ("x-original-url", url.to_owned()),
    ]
}

/// Traefik's or Caddy's headers for `method proto://host uri`.
fn traefik(method: &str, proto: &str, host: &str, uri: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-forwarded-method", method.to_owned()),
        ("x-forwarded-proto", proto.to_owned()),
        ("x-forwarded-host", host.to_owned()),
        ("x-forwarded-uri", uri.to_owned()),
    ]
}

pub(super) const HTML: (&str, &str) = ("accept", "text/html,application/xhtml+xml;q=0.9");

/// `/auth/request` for `method url` with a credential and extra headers.
pub(super) async fn ask(s: &Server, method: &str, url: &str, extra: &[(&str, &str)]) -> Resp {
    let mut headers: Vec<(&str, &str)> = Vec::new();
    let base = nginx(method, url);
    headers.extend(base.iter().map(|(k, v)| (*k, v.as_str())));
    headers.extend_from_slice(extra);
    s.send(asking("/auth/request", PROXY, &headers)).await
}

async fn ask_forward(s: &Server, method: &str, url: &str, extra: &[(&str, &str)]) -> Resp {
    let (proto, rest) = url.split_once("://").unwrap();
    let (host, uri) = rest
        .find('/')
        .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let base = traefik(method, proto, host, uri);
    let mut headers: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
    headers.extend_from_slice(extra);
    s.send(asking("/auth/forward", PROXY, &headers)).await
}

/// A logged-in browser's `Cookie` header value.
async fn session_cookie(s: &Server, name: &str) -> String {
    let mut b = Browser::new();
    let r = b.login(s, name, PW).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    format!("{SESSION}={}", b.session().unwrap())
}

/// Verify the assertion of `r` for `audience` and return its claims.
fn assertion(r: &Resp, ring: &KeyRing, audience: &str, now: i64) -> jwt::Claims {
    let token = r
        .header("countersign-jwt-assertion")
        .unwrap_or_else(|| panic!("no assertion: {r:?}"));
    let v = Validation {
        audience: Some(audience.to_owned()),
        issuer: Some("https://auth.example.test".to_owned()),
        ..Validation::default()
    };
    jwt::verify(ring, &v, token, UnixTime(now)).unwrap().claims
}

#[tokio::test]
async fn nginx_auth_request_answers_200_401_or_403_only() {
    let (s, ring) = forward_server(|_| {});
    s.add_user("alice", "user").await;
    s.add_user("root", "admin").await;
    let alice = session_cookie(&s, "alice").await;
    let root = session_cookie(&s, "root").await;
    let alice_cookie = ("cookie", alice.as_str());
    let root_cookie = ("cookie", root.as_str());

    // Nobody logged in: 401 with the challenge; a browser navigation also gets the login
    // page's URL, with the original URL to come back to.
    let r = ask(&s, "GET", &format!("{APP}/notes?x=1&y=2"), &[HTML]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="countersign""#)
    );
    assert_eq!(
        r.header("location"),
        Some(
            "https://auth.example.test/login?rd=https%3A%2F%2Fapp.example.test%2Fnotes%3Fx%3D1%26y%3D2"
        )
    );
    assert_eq!(r.error(), "missing_token");
    assert!(r.header("remote-user").is_none());
    let r = ask(
        &s,
        "GET",
        &format!("{APP}/notes"),
        &[("accept", "application/json")],
    )
    .await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::UNAUTHORIZED, None),
        "{r:?}"
    );
    let r = ask(&s, "POST", &format!("{APP}/notes"), &[HTML]).await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::UNAUTHORIZED, None),
        "{r:?}"
    );

    // Logged in: 200 with who it is.
    let r = ask(&s, "GET", &format!("{APP}/notes"), &[alice_cookie, HTML]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.header("remote-user"), Some("alice"));
    assert_eq!(r.header("remote-groups"), Some("user"));
    let claims = assertion(&r, &ring, APP, T0);
    assert_eq!(claims.username.as_deref(), Some("alice"));
    assert_eq!(claims.role.as_deref(), Some("user"));
    assert_eq!(claims.iat, Some(UnixTime(T0)));
    assert_eq!(claims.exp, UnixTime(T0 + 60));
    assert_eq!(claims.aud, [APP]);
    assert!(
        claims
            .sub
            .as_deref()
            .is_some_and(|s| s.parse::<i64>().is_ok()),
        "{claims:?}"
    );
    // The assertion is not an access token here.
    let bearer = s
        .bearer(
            Method::GET,
            "/protected",
            r.header("countersign-jwt-assertion").unwrap(),
        )
        .await;
    assert_eq!(bearer.status, StatusCode::UNAUTHORIZED, "{bearer:?}");

    // The rules: role, public, deny, method.
    let r = ask(&s, "GET", &format!("{APP}/admin/users"), &[alice_cookie]).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "insufficient_scope"),
        "{r:?}"
    );
    assert!(r.header("remote-user").is_none());
    let r = ask(&s, "GET", &format!("{APP}/admin/users"), &[root_cookie]).await;
    assert_eq!(
        (r.status, r.header("remote-groups")),
        (StatusCode::OK, Some("admin")),
        "{r:?}"
    );
    let r = ask(&s, "GET", &format!("{APP}/admin"), &[HTML]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    let r = ask(&s, "GET", &format!("{APP}/public/x"), &[]).await;
    assert_eq!(
        (r.status, r.header("remote-user")),
        (StatusCode::OK, Some("")),
        "{r:?}"
    );
    assert_eq!(r.header("remote-groups"), Some(""));
    assert_eq!(r.header("countersign-jwt-assertion"), Some(""));
    let r = ask(&s, "GET", &format!("{APP}/public/x"), &[alice_cookie]).await;
    assert_eq!(
        (r.status, r.header("remote-user")),
        (StatusCode::OK, Some("alice")),
        "{r:?}"
    );
    for cookie in [None, Some(alice_cookie), Some(root_cookie)] {
        let extra: Vec<_> = cookie.into_iter().collect();
        let r = ask(&s, "GET", &format!("{APP}/blocked"), &extra).await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::FORBIDDEN, "access_denied"),
            "{r:?}"
        );
    }
    let r = ask(&s, "GET", &format!("{APP}/api/notes/1"), &[alice_cookie]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r = ask(&s, "DELETE", &format!("{APP}/api/notes/1"), &[alice_cookie]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");

    // The path the application routes is the one judged.
    for url in [
        "https://app.example.test/%61dmin/users",
        "https://app.example.test//admin",
        "https://app.example.test/public/../admin",
        "https://app.example.test/public/%2e%2e/admin",
        "https://app.example.test/public%2f..%2fadmin",
        "https://APP.example.test./admin",
        "https://app.example.test:443/admin",
    ] {
        let r = ask(&s, "GET", url, &[alice_cookie]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{url}: {r:?}");
    }
    // The rule names one host: another host falls to the default.
    let r = ask(
        &s,
        "GET",
        "https://other.example.test/admin",
        &[alice_cookie],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[tokio::test]
async fn proxy_only_answers_carry_no_browser_headers() {
    // nginx reads /auth/request's answers and never passes them on: they carry the request
    // id and `Cache-Control: no-store`, not the headers meant for a browser rendering a
    // page. /auth/forward's refusals reach browsers through Traefik and Caddy: they keep them.
    let (s, _) = forward_server(|_| {});
    s.add_user("alice", "user").await;
    let alice = session_cookie(&s, "alice").await;
    let browser_headers = [
        "content-security-policy",
        "x-frame-options",
        "x-content-type-options",
        "referrer-policy",
    ];
    for r in [
        ask(
            &s,
            "GET",
            &format!("{APP}/notes"),
            &[("cookie", alice.as_str())],
        )
        .await,
        ask(&s, "GET", &format!("{APP}/notes"), &[HTML]).await,
    ] {
        assert!(matches!(r.status.as_u16(), 200 | 401), "{r:?}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
        assert!(r.header("x-request-id").is_some(), "{r:?}");
        for name in browser_headers {
            assert!(r.header(name).is_none(), "{name} on {r:?}");
        }
    }
    let r = ask_forward(&s, "GET", &format!("{APP}/notes"), &[("accept", "*/*")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    for name in browser_headers {
        assert!(r.header(name).is_some(), "{name} missing on {r:?}");
    }
    let r = s.get("/healthz").await;
    assert!(r.header("content-security-policy").is_some(), "{r:?}");
}

#[tokio::test]
async fn bearer_tokens_and_revocation_are_those_of_protected() {
    let (s, ring) = forward_server(|_| {});
    s.add_user("alice", "user").await;
    let pair = s.tokens("alice").await;
    let token = pair["access_token"].as_str().unwrap();
    let auth = format!("Bearer {token}");
    let r = ask(&s, "GET", &format!("{APP}/"), &[("authorization", &auth)]).await;
    assert_eq!(
        (r.status, r.header("remote-user")),
        (StatusCode::OK, Some("alice")),
        "{r:?}"
    );
    assert_eq!(
        assertion(&r, &ring, APP, T0).username.as_deref(),
        Some("alice")
    );
    // Revoked: refused like on /protected.
    let revoked = s
        .post_json("/api/token/revoke", &json!({"token": token}))
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let r = ask(&s, "GET", &format!("{APP}/"), &[("authorization", &auth)]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    assert_eq!(r.error(), "invalid_token");
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    let r = ask(
        &s,
        "GET",
        &format!("{APP}/"),
        &[("authorization", "Bearer nonsense")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");

    // A session that logged out is refused at once, and its cookie is not cleared on the
    // application's host by the answer.
    let mut b = Browser::new();
    b.login(&s, "alice", PW).await;
    let cookie = format!("{SESSION}={}", b.session().unwrap());
    let r = ask(&s, "GET", &format!("{APP}/"), &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let token = b.csrf(&s).await;
    let out = b.form("/logout", &[("csrf_token", &token)]);
    assert_eq!(b.go(&s, out).await.status, StatusCode::SEE_OTHER);
    let r = ask(&s, "GET", &format!("{APP}/"), &[("cookie", &cookie), HTML]).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "invalid_session"),
        "{r:?}"
    );
    assert!(r.set_cookies().is_empty(), "{r:?}");
    assert!(r.header("location").is_some());
}

#[tokio::test]
async fn assertions_are_reused_for_30_seconds_per_session_and_audience() {
    let (s, ring) = forward_server(|_| {});
    s.add_user("alice", "user").await;
    let alice = session_cookie(&s, "alice").await;
    let c = ("cookie", alice.as_str());
    let first = ask(&s, "GET", &format!("{APP}/a"), &[c]).await;
    let again = ask(&s, "GET", &format!("{APP}/b?x"), &[c]).await;
    let token = |r: &Resp| r.header("countersign-jwt-assertion").unwrap().to_owned();
    assert_eq!(
        token(&first),
        token(&again),
        "the same session and origin: the same assertion"
    );
    let other = ask(&s, "GET", "https://other.example.test/a", &[c]).await;
    assert_ne!(token(&first), token(&other));
    assert_eq!(
        assertion(&other, &ring, "https://other.example.test", T0).aud,
        ["https://other.example.test"]
    );
    // Another session of the same user has its own.
    let alice2 = session_cookie(&s, "alice").await;
    let second = ask(
        &s,
        "GET",
        &format!("{APP}/a"),
        &[("cookie", alice2.as_str())],
    )
    .await;
    assert_eq!(second.status, StatusCode::OK);
    s.clock.advance(29);
    assert_eq!(
        token(&ask(&s, "GET", &format!("{APP}/a"), &[c]).await),
        token(&first)
    );
    s.clock.advance(1);
    let renewed = ask(&s, "GET", &format!("{APP}/a"), &[c]).await;
    assert_ne!(token(&renewed), token(&first));
    let claims = assertion(&renewed, &ring, APP, T0 + 30);
    assert_eq!(
        (claims.iat, claims.exp),
        (Some(UnixTime(T0 + 30)), UnixTime(T0 + 90))
    );
}

#[tokio::test]
async fn only_trusted_proxies_are_answered() {
    let (s, _) = forward_server(|_| {});
    s.add_user("alice", "user").await;
    let alice = session_cookie(&s, "alice").await;
    let headers = nginx("GET", &format!("{APP}/"));
    let mut h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    h.push(("cookie", &alice));
    // A client straight to the server, with a valid session: 403, never a decision.
    let r = s.send(asking("/auth/request", "192.0.2.7:4000", &h)).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "untrusted_peer"),
        "{r:?}"
    );
    assert!(r.header("remote-user").is_none());
    let fwd = traefik("GET", "https", "app.example.test", "/");
    let mut h2: Vec<(&str, &str)> = fwd.iter().map(|(k, v)| (*k, v.as_str())).collect();
    h2.push(("cookie", &alice));
    let r = s.send(asking("/auth/forward", "192.0.2.7:4000", &h2)).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "untrusted_peer"),
        "{r:?}"
    );
    // Without connection info (no peer at all), the same.
    let mut req = asking("/auth/request", PROXY, &h);
    req.extensions_mut().remove::<ConnectInfo<SocketAddr>>();
    assert_eq!(s.send(req).await.status, StatusCode::FORBIDDEN);
    // The default configuration trusts no proxy.
    let (plain, _) =
        forward_server(|c| c.trusted_proxies = countersign_axum::TrustedProxies::none());
    let r = plain.send(asking("/auth/request", PROXY, &h)).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "untrusted_peer"),
        "{r:?}"
    );
}

#[tokio::test]
async fn each_endpoint_reads_only_its_own_headers() {
    let (s, _) = forward_server(|_| {});
    s.add_user("alice", "user").await;
    let alice = session_cookie(&s, "alice").await;
    let c = ("cookie", alice.as_str());
    // nginx's endpoint without X-Original-URL: refused, whatever X-Forwarded-* say.
    let fwd = traefik("GET", "https", "app.example.test", "/public");
    let mut h: Vec<(&str, &str)> = fwd.iter().map(|(k, v)| (*k, v.as_str())).collect();
    h.push(c);
    let r = s.send(asking("/auth/request", PROXY, &h)).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "bad_original_request"),
        "{r:?}"
    );
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("X-Original-URL"),
        "{r:?}"
    );
    // Traefik copies client headers: an X-Original-URL a client adds is not what decides.
    let r = ask_forward(
        &s,
        "GET",
        &format!("{APP}/blocked"),
        &[("x-original-url", "https://app.example.test/public"), c],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    // Unusable headers.
    for extra in [
        vec![
            ("x-original-url", "/relative"),
            ("x-original-method", "GET"),
        ],
        vec![
            ("x-original-url", "https://u:p@app.example.test/"),
            ("x-original-method", "GET"),
        ],
        vec![("x-original-url", "https://app.example.test/")],
    ] {
        let r = s.send(asking("/auth/request", PROXY, &extra)).await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::FORBIDDEN, "bad_original_request"),
            "{extra:?}: {r:?}"
        );
    }
    let r = s
        .send(asking(
            "/auth/forward",
            PROXY,
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.test@app.example.test"),
                ("x-forwarded-uri", "/"),
            ],
        ))
        .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "bad_original_request"),
        "{r:?}"
    );
    // Proxies ask with GET; nothing else is routed.
    let post = Request::post("/auth/request")
        .extension(ConnectInfo(PROXY.parse::<SocketAddr>().unwrap()))
        .body(Body::empty())
        .unwrap();
    assert_eq!(s.send(post).await.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn traefik_and_caddy_get_a_redirect_for_browsers_and_401_for_the_rest() {
    let (s, ring) = forward_server(|_| {});
    s.add_user("alice", "user").await;
    let alice = session_cookie(&s, "alice").await;
    let r = ask_forward(&s, "GET", "http://app.example.test:8080/notes?a=b", &[HTML]).await;
    assert_eq!(r.status, StatusCode::FOUND, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some(
            "https://auth.example.test/login?rd=http%3A%2F%2Fapp.example.test%3A8080%2Fnotes%3Fa%3Db"
        )
    );
    let r = ask_forward(&s, "HEAD", &format!("{APP}/"), &[HTML]).await;
    assert_eq!(r.status, StatusCode::FOUND, "{r:?}");
    for (method, accept) in [
        ("GET", "application/json"),
        ("POST", "text/html"),
        ("GET", "*/*"),
    ] {
        let r = ask_forward(&s, method, &format!("{APP}/notes"), &[("accept", accept)]).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {accept}: {r:?}"
        );
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="countersign""#)
        );
        assert_eq!(r.error(), "missing_token");
    }
    let r = ask_forward(
        &s,
        "GET",
        "http://app.example.test:8080/x",
        &[("cookie", &alice)],
    )
    .await;
    assert_eq!(
        (r.status, r.header("remote-user")),
        (StatusCode::OK, Some("alice")),
        "{r:?}"
    );
    assert_eq!(
        assertion(&r, &ring, "http://app.example.test:8080", T0)
            .role
            .as_deref(),
        Some("user")
    );
    // A browser refused by a rule gets a page; an API client JSON.
    let r = ask_forward(
        &s,
        "GET",
        &format!("{APP}/admin"),
        &[("cookie", &alice), HTML],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    assert!(
        r.header("content-type").unwrap().starts_with("text/html"),
        "{r:?}"
    );
    assert!(
        r.body.contains("This page requires the admin role."),
        "{r:?}"
    );
    let r = ask_forward(&s, "GET", &format!("{APP}/admin"), &[("cookie", &alice)]).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "insufficient_scope"),
        "{r:?}"
    );
}

#[tokio::test]
async fn the_rules_are_replaced_whole() {
    let (s, _) = forward_server(|_| {});
    let r = ask(&s, "GET", &format!("{APP}/x"), &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    s.app
        .site
        .forward
        .set_rules(AccessRules::new(&[], Some("public")).unwrap());
    let r = ask(&s, "GET", &format!("{APP}/x"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
}

// --- the way back: /login?rd=, /logout?rd= ---------------------------------------------

#[tokio::test]
async fn login_returns_to_an_allowed_url_only() {
    let (s, _) = forward_server(|_| {});
    s.add_user("alice", "user").await;
    let to = "https://app.example.test/notes?a=1&b=2";
    let encoded = "https%3A%2F%2Fapp.example.test%2Fnotes%3Fa%3D1%26b%3D2";
    let mut b = Browser::new();
    let page = b.get(&s, &format!("/login?rd={encoded}")).await;
    assert!(
        page.body.contains(
            r#"<input type="hidden" name="rd" value="https://app.example.test/notes?a=1&#38;b=2">"#
        ),
        "{page:?}"
    );
    // Browsers apply the policy's form-action to the redirect after the post: the page
    // names the return URL's origin, and only it.
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("form-action 'self' https://app.example.test;"),
        "{csp}"
    );
    let plain = b.get(&s, "/login").await;
    let csp = plain.header("content-security-policy").unwrap();
    assert!(csp.contains("form-action 'self';"), "{csp}");
    // A failed attempt keeps it.
    let token = page.form_token();
    let bad = b.form(
        "/login",
        &[
            ("username", "alice"),
            ("password", "wrong password"),
            ("csrf_token", &token),
            ("rd", to),
        ],
    );
    let r = b.go(&s, bad).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains(r#"name="rd""#), "{r:?}");
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("https://app.example.test;")
    );
    let good = b.form(
        "/login",
        &[
            ("username", "alice"),
            ("password", PW),
            ("csrf_token", &token),
            ("rd", to),
        ],
    );
    let r = b.go(&s, good).await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::SEE_OTHER, Some(to)),
        "{r:?}"
    );

    for evil in [
        "//evil.test/",
        "https://evil.test/",
        "https://app.example.test@evil.test/",
        "javascript:alert(1)",
        "/\\evil.test",
        "https:evil.test",
        "https://example.test.evil/",
    ] {
        let mut b = Browser::new();
        let page = b
            .get(
                &s,
                &format!(
                    "/login?rd={}",
                    form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>()
                ),
            )
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains(r#"name="rd""#), "{evil}: {page:?}");
        let token = page.form_token();
        let form = b.form(
            "/login",
            &[
                ("username", "alice"),
                ("password", PW),
                ("csrf_token", &token),
                ("rd", evil),
            ],
        );
        let r = b.go(&s, form).await;
        assert_eq!(
            (r.status, r.header("location")),
            (StatusCode::SEE_OTHER, Some("/")),
            "{evil}: {r:?}"
        );
    }
    // A path here is fine; the public URL's host too.
    let r = Browser::new().login(&s, "alice", PW).await;
    assert_eq!(r.header("location"), Some("/"));
    let mut b = Browser::new();
    let token = b.get(&s, "/login").await.form_token();
    let form = b.form(
        "/login",
        &[
            ("username", "alice"),
            ("password", PW),
            ("csrf_token", &token),
            ("rd", "/account/sessions"),
        ],
    );
    assert_eq!(
        b.go(&s, form).await.header("location"),
        Some("/account/sessions")
    );
}

#[tokio::test]
async fn logout_asks_then_returns_to_an_allowed_url() {
    let (s, _) = forward_server(|_| {});
    s.add_user("alice", "user").await;
    let to = "https://app.example.test/";
    // Not logged in: straight back (or home for a URL not allowed).
    let mut b = Browser::new();
    let r = b
        .get(&s, "/logout?rd=https%3A%2F%2Fapp.example.test%2F")
        .await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::SEE_OTHER, Some(to)),
        "{r:?}"
    );
    let r = b.get(&s, "/logout?rd=https%3A%2F%2Fevil.test%2F").await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::SEE_OTHER, Some("/")),
        "{r:?}"
    );
    // Logged in: one button, which carries the session's CSRF token and the return URL.
    b.login(&s, "alice", PW).await;
    let page = b
        .get(&s, "/logout?rd=https%3A%2F%2Fapp.example.test%2F")
        .await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    assert!(
        page.body
            .contains(r#"<form method="post" action="/logout">"#),
        "{page:?}"
    );
    assert!(
        page.body
            .contains(r#"name="rd" value="https://app.example.test/""#),
        "{page:?}"
    );
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("form-action 'self' https://app.example.test;"),
        "{page:?}"
    );
    assert!(b.session().is_some(), "GET logs no one out");
    let token = page.form_token();
    let out = b.form("/logout", &[("csrf_token", &token), ("rd", to)]);
    let r = b.go(&s, out).await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::SEE_OTHER, Some(to)),
        "{r:?}"
    );
    assert!(b.session().is_none());
    // Evil return URL: home.
    b.login(&s, "alice", PW).await;
    let token = b.csrf(&s).await;
    let out = b.form("/logout", &[("csrf_token", &token), ("rd", "//evil.test")]);
    let r = b.go(&s, out).await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::SEE_OTHER, Some("/")),
        "{r:?}"
    );
    // Without the CSRF token, a cross-site form logs no one out.
    b.login(&s, "alice", PW).await;
    let out = b.form("/logout", &[("rd", to)]);
    assert_eq!(b.go(&s, out).await.status, StatusCode::FORBIDDEN);
    assert!(b.session().is_some());
}

#[tokio::test]
async fn cookie_domain_shares_the_session_with_subdomains() {
    let (s, _) = forward_server(|c| c.forward.cookie_domain = Some("example.test".to_owned()));
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    let token = b.get(&s, "/login").await.form_token();
    let form = b.form(
        "/login",
        &[
            ("username", "alice"),
            ("password", PW),
            ("csrf_token", &token),
        ],
    );
    let r = b.go(&s, form).await;
    let set = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Secure-countersign="))
        .unwrap_or_else(|| panic!("no __Secure- session cookie: {r:?}"))
        .to_owned();
    assert!(set.contains("; Domain=example.test; Path=/;"), "{set}");
    assert!(
        set.contains("; Secure") && set.contains("; HttpOnly"),
        "{set}"
    );
    assert!(
        r.set_cookies()
            .iter()
            .all(|c| !c.starts_with("__Host-countersign=")),
        "{r:?}"
    );
    let cookie = format!("__Secure-countersign={}", b.jar["__Secure-countersign"]);
    let r = ask(
        &s,
        "GET",
        "https://notes.example.test/",
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(
        (r.status, r.header("remote-user")),
        (StatusCode::OK, Some("alice")),
        "{r:?}"
    );
    // Logout clears it with the same Domain, or the browser would keep it.
    let token = b.csrf(&s).await;
    let out = b.form("/logout", &[("csrf_token", &token)]);
    let r = b.go(&s, out).await;
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("__Secure-countersign=;")
                && c.contains("Domain=example.test")
                && c.contains("Max-Age=0")),
        "{r:?}"
    );
}
