//! Requiring a second factor: `policy = "mfa"` access rules in forward authentication, and
//! `--require-mfa ROLES` for the server's own routes and for forward authentication.

use countersign::auth::Authentication;
use countersign::mfa::Amr;
use countersign_server::access::AccessRules;

use super::forward::{HTML, ask, forward_server, rule};
use super::*;

const APP: &str = "https://app.example.test";

/// The `Cookie` header of a session of `name` made by a sign-in that proved `amr`.
async fn cookie_with(s: &Server, name: &str, amr: Amr) -> String {
    let engine = s.app.engine();
    let user = engine.user_by_name(name).await.unwrap().unwrap();
    let authn = Authentication {
        amr,
        auth_time: engine.now(),
    };
    let (cookie, _) = engine
        .start_session_with(&user, authn, "test", "127.0.0.1")
        .await
        .unwrap();
    format!("{SESSION}={}", cookie.as_str())
}

fn mfa_rules() -> AccessRules {
    AccessRules::new(
        &[
            rule(None, "/vault", None, "mfa"),
            rule(None, "/public", None, "public"),
        ],
        None,
    )
    .unwrap()
}

#[tokio::test]
async fn an_mfa_rule_admits_only_a_second_factor_sign_in() {
    let (s, _) = forward_server(|c| c.forward.access = mfa_rules());
    s.add_user("alice", "user").await;
    let password = cookie_with(&s, "alice", Amr::PWD).await;
    let two = cookie_with(&s, "alice", Amr::PWD.with(Amr::OTP)).await;
    let passkey = cookie_with(&s, "alice", Amr::verified_key(true)).await;
    let vault = format!("{APP}/vault/1");

    let r = ask(&s, "GET", &vault, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    let r = ask(&s, "GET", &vault, &[("cookie", &password)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    assert_eq!(r.error(), "mfa_required");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|v| v.contains("insufficient_user_authentication"))
    );
    assert!(r.header("remote-user").is_none());
    // A browser gets a page that says where to go.
    let r = ask(&s, "GET", &vault, &[("cookie", &password), HTML]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("/account/security"), "{}", r.body);
    for cookie in [&two, &passkey] {
        let r = ask(&s, "GET", &vault, &[("cookie", cookie)]).await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert_eq!(r.header("remote-user"), Some("alice"));
    }
    // Elsewhere a password sign-in is enough.
    let r = ask(&s, "GET", &format!("{APP}/notes"), &[("cookie", &password)]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[tokio::test]
async fn required_roles_must_sign_in_with_a_second_factor_behind_the_proxy() {
    let (s, _) = forward_server(|c| {
        c.forward.access = mfa_rules();
        c.require_mfa = vec![Role::admin()];
    });
    s.add_user("alice", "user").await;
    s.add_user("root", "admin").await;
    let alice = cookie_with(&s, "alice", Amr::PWD).await;
    let root = cookie_with(&s, "root", Amr::PWD).await;
    let root_two = cookie_with(&s, "root", Amr::PWD.with(Amr::HWK)).await;
    let notes = format!("{APP}/notes");
    let r = ask(&s, "GET", &notes, &[("cookie", &alice)]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r = ask(&s, "GET", &notes, &[("cookie", &root)]).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "mfa_required"),
        "{r:?}"
    );
    let r = ask(&s, "GET", &format!("{APP}/public/x"), &[("cookie", &root)]).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a public rule passes everyone: {r:?}"
    );
    let r = ask(&s, "GET", &notes, &[("cookie", &root_two)]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.header("remote-user"), Some("root"));
}

#[tokio::test]
async fn required_roles_reach_only_enrolment_until_they_use_a_second_factor() {
    let s = Server::with(|c| c.require_mfa = vec![Role::admin()]);
    s.add_user("root", "admin").await;
    s.add_user("alice", "user").await;
    let root = cookie_with(&s, "root", Amr::PWD).await;
    let alice = cookie_with(&s, "alice", Amr::PWD).await;
    let page = |path: &str, cookie: &str| {
        Request::get(path)
            .header(header::COOKIE, cookie)
            .header(header::ACCEPT, "text/html")
            .body(Body::empty())
            .unwrap()
    };
    // A browser is sent to enrol; the security page itself is reachable.
    let r = s.send(page("/", &root)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(r.header("location"), Some("/account/security?required=1"));
    let r = s.send(page("/account/security", &root)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    // The API answers RFC 9470's step-up challenge, except what enrolment needs.
    let token = s.tokens("root").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.bearer(Method::GET, "/api/sessions", &token).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "mfa_required"),
        "{r:?}"
    );
    let r = s.bearer(Method::GET, "/api/me", &token).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r = s.bearer(Method::GET, "/api/account/mfa", &token).await;
    assert_ne!(r.error(), "mfa_required", "{r:?}");
    // Other roles are not concerned; a second-factor sign-in is let through.
    let r = s.send(page("/", &alice)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let root_two = cookie_with(&s, "root", Amr::PWD.with(Amr::OTP)).await;
    let r = s.send(page("/", &root_two)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}
