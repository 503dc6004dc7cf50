//! The login and registration forms' CSRF cookie as a browser lives with it, in the default
//! configuration (`Secure` `__Host-` cookies): a refused form comes back as the form (HTML,
//! the same 403, a fresh token and cookie, a sentence) for a browser and as JSON for an
//! API client; a form that arrives without its cookie says why; a second view of the login
//! page keeps the first view's cookie; login and logout rotate it.

use countersign::auth::PRE_SESSION_CSRF_TTL_SECS;
use countersign_server::server::pages::COOKIE_DROPPED;

use super::*;

/// The sentence a browser sees when its form's token is stale or foreign.
const FORM_EXPIRED: &str = "This form expired or was sent from another site.";

/// `request` as a browser sends a form: it accepts HTML.
fn from_browser(mut request: Request<Body>) -> Request<Body> {
    request.headers_mut().insert(
        header::ACCEPT,
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            .parse()
            .unwrap(),
    );
    request
}

/// The login fields for alice with `token`.
fn alice_with(token: &str) -> [(&str, &str); 3] {
    [
        ("username", "alice"),
        ("password", PW),
        ("csrf_token", token),
    ]
}

/// The page is the login form again, answered as HTML with the status of the refusal.
fn assert_login_form(r: &Resp, status: StatusCode) {
    assert_eq!(r.status, status, "{r:?}");
    assert!(
        r.header("content-type").unwrap().starts_with("text/html"),
        "{r:?}"
    );
    assert!(r.body.contains("action=\"/login\""), "{r:?}");
    assert!(r.body.contains("<label for=\"username\">"), "{r:?}");
    assert_no_store(r);
    assert!(r.cookie(SESSION).is_none(), "{r:?}");
}

#[tokio::test]
async fn a_refused_login_form_is_shown_again_to_a_browser_and_json_to_an_api_client() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    let first = b.get(&s, "/login").await;
    let old_cookie = first.cookie(CSRF_COOKIE).unwrap();
    let old_token = first.form_token();

    // A token the cookie does not sign, from a browser: the form again, 403.
    let r = b
        .go(&s, from_browser(b.form("/login", &alice_with("guess"))))
        .await;
    assert_login_form(&r, StatusCode::FORBIDDEN);
    assert!(r.body.contains(FORM_EXPIRED), "{r:?}");
    assert!(!r.body.contains("guess"), "the refused token is not echoed");
    assert!(b.session().is_none());
    // A fresh pair: a new cookie, and a token that is neither the old one nor the guess.
    let new_cookie = r.cookie(CSRF_COOKIE).expect("a fresh CSRF cookie");
    assert_ne!(new_cookie, old_cookie);
    let fresh = r.form_token();
    assert!(!fresh.is_empty());
    assert_ne!(fresh, old_token);
    let set = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with(CSRF_COOKIE))
        .unwrap()
        .to_owned();
    for attr in ["Path=/", "HttpOnly", "Secure", "SameSite="] {
        assert!(set.contains(attr), "{set}");
    }
    // The form shown again logs in.
    let r = b
        .go(&s, from_browser(b.form("/login", &alice_with(&fresh))))
        .await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::SEE_OTHER, Some("/")),
        "{r:?}"
    );
    assert!(b.session().is_some());

    // An API client (no Accept: text/html) gets the JSON, and no cookie.
    let mut api = Browser::new();
    api.get(&s, "/login").await;
    let r = api.go(&s, api.form("/login", &alice_with("guess"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json"),
        "{r:?}"
    );
    assert_eq!(
        r.json(),
        json!({
            "error": "csrf_failed",
            "message": "The request failed the CSRF check: reload the page and try again."
        })
    );
    assert!(r.set_cookies().is_empty(), "{r:?}");
    // Asking for JSON by name is the same.
    let mut req = api.form("/login", &alice_with("guess"));
    req.headers_mut()
        .insert(header::ACCEPT, "application/json".parse().unwrap());
    let r = api.go(&s, req).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "csrf_failed")
    );
    assert!(api.session().is_none());
}

#[tokio::test]
async fn a_cross_site_login_post_from_a_browser_gets_the_form_not_a_session() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    let token = b.get(&s, "/login").await.form_token();
    // The right cookie and token, but sent by a page of another site.
    let mut req = from_browser(b.form("/login", &alice_with(&token)));
    req.headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    req.headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    let r = b.go(&s, req).await;
    assert_login_form(&r, StatusCode::FORBIDDEN);
    assert!(r.body.contains(FORM_EXPIRED), "{r:?}");
    assert!(b.session().is_none());
    assert_eq!(
        b.get(&s, "/protected").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_refused_registration_form_is_shown_again() {
    let s = Server::with(|c| c.registration = Registration::Open);
    let mut b = Browser::new();
    b.get(&s, "/register").await;
    let fields = [
        ("username", "carol"),
        ("password", PW),
        ("csrf_token", "guess"),
    ];
    let r = b.go(&s, from_browser(b.form("/register", &fields))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    assert!(r.body.contains("action=\"/register\""), "{r:?}");
    assert!(r.body.contains(FORM_EXPIRED), "{r:?}");
    assert!(r.cookie(CSRF_COOKIE).is_some(), "{r:?}");
    let fresh = r.form_token();
    let fields = [
        ("username", "carol"),
        ("password", PW),
        ("csrf_token", &fresh),
    ];
    let r = b.go(&s, from_browser(b.form("/register", &fields))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert!(b.get(&s, "/").await.body.contains("Logged in as carol"));
}

#[tokio::test]
async fn a_form_without_the_cookie_its_page_set_says_the_browser_dropped_it() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    let token = b.get(&s, "/login").await.form_token();
    // What a browser does with a Secure cookie over plain HTTP on a non-loopback address:
    // it never sends it back.
    b.jar.clear();
    let r = b
        .go(&s, from_browser(b.form("/login", &alice_with(&token))))
        .await;
    assert_login_form(&r, StatusCode::FORBIDDEN);
    assert!(r.body.contains(COOKIE_DROPPED), "{r:?}");
    assert!(!r.body.contains(FORM_EXPIRED), "{r:?}");
    assert!(r.body.contains("--insecure-cookies"), "{r:?}");
    assert!(r.body.contains("--trusted-proxies"), "{r:?}");
    // It is still offered a fresh pair, which works once the cookie comes back.
    assert!(r.cookie(CSRF_COOKIE).is_some(), "{r:?}");
    let fresh = r.form_token();
    let r = b
        .go(&s, from_browser(b.form("/login", &alice_with(&fresh))))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");

    // An API client without the cookie gets the JSON.
    let mut api = Browser::new();
    let token = api.get(&s, "/login").await.form_token();
    api.jar.clear();
    let r = api.go(&s, api.form("/login", &alice_with(&token))).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "csrf_failed")
    );

    // With cookies that are not Secure, nothing was dropped by the browser for that reason:
    // the page says the form expired.
    let s = Server::with(|c| c.insecure_cookies = true);
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    let token = b.get(&s, "/login").await.form_token();
    b.jar.clear();
    let r = b
        .go(&s, from_browser(b.form("/login", &alice_with(&token))))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    assert!(r.body.contains(FORM_EXPIRED), "{r:?}");
    assert!(!r.body.contains(COOKIE_DROPPED), "{r:?}");
    assert!(r.cookie("countersign-csrf").is_some(), "{r:?}");
}

#[tokio::test]
async fn a_second_view_of_the_login_page_keeps_the_first_forms_cookie() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    let first = b.get(&s, "/login").await;
    let cookie = first.cookie(CSRF_COOKIE).unwrap();
    let token = first.form_token();

    // A second tab, the home page's form, a later view: the same cookie (not set again) and
    // the same token.
    s.clock.advance(60);
    for page in ["/login", "/", "/login"] {
        let again = b.get(&s, page).await;
        assert_eq!(again.status, StatusCode::OK, "{again:?}");
        assert_eq!(again.cookie(CSRF_COOKIE), None, "{page}: {again:?}");
        assert_eq!(again.form_token(), token, "{page}");
    }
    assert_eq!(b.jar.get(CSRF_COOKIE), Some(&cookie));
    // The first tab's form still logs in.
    let r = b
        .go(&s, from_browser(b.form("/login", &alice_with(&token))))
        .await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::SEE_OTHER, Some("/")),
        "{r:?}"
    );
    assert!(b.get(&s, "/").await.body.contains("Logged in as alice"));

    // A cookie that has expired is replaced by the next view.
    let mut late = Browser::new();
    let first = late.get(&s, "/login").await;
    let (cookie, token) = (first.cookie(CSRF_COOKIE).unwrap(), first.form_token());
    s.clock.advance(PRE_SESSION_CSRF_TTL_SECS);
    let r = late
        .go(&s, from_browser(late.form("/login", &alice_with(&token))))
        .await;
    assert_login_form(&r, StatusCode::FORBIDDEN);
    assert!(r.body.contains(FORM_EXPIRED), "{r:?}");
    let mut view = Browser::new();
    view.jar.insert(CSRF_COOKIE.to_owned(), cookie.clone());
    let r = view.get(&s, "/login").await;
    let renewed = r
        .cookie(CSRF_COOKIE)
        .expect("an expired cookie is replaced");
    assert_ne!(renewed, cookie);
    assert_ne!(r.form_token(), token);
}

#[tokio::test]
async fn login_and_logout_rotate_the_csrf_cookie() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    let page = b.get(&s, "/login").await;
    let (before, before_token) = (page.cookie(CSRF_COOKIE).unwrap(), page.form_token());

    // Login: a session, and the pre-session cookie is cleared.
    let r = b
        .go(
            &s,
            from_browser(b.form("/login", &alice_with(&before_token))),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with(&format!("{CSRF_COOKIE}=;")) && c.contains("Max-Age=0")),
        "{r:?}"
    );
    assert!(!b.jar.contains_key(CSRF_COOKIE));
    // The signed-in forms carry the session's token, not the pre-session one.
    let session_token = b.csrf(&s).await;
    assert_ne!(session_token, before_token);
    let home = b.get(&s, "/").await;
    assert!(home.body.contains("Logged in as alice"), "{home:?}");
    assert_eq!(home.form_token(), session_token);
    assert!(home.cookie(CSRF_COOKIE).is_none(), "{home:?}");

    // Logout, and the next login form has a new cookie and token.
    let r = b.submit(&s, "/", "/logout", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert!(b.session().is_none());
    let page = b.get(&s, "/login").await;
    let after = page.cookie(CSRF_COOKIE).expect("a new pre-session cookie");
    assert_ne!(after, before);
    let after_token = page.form_token();
    assert_ne!(after_token, before_token);
    assert_ne!(after_token, session_token);
    // The old session's token is no good for the new form.
    let r = b
        .go(
            &s,
            from_browser(b.form("/login", &alice_with(&session_token))),
        )
        .await;
    assert_login_form(&r, StatusCode::FORBIDDEN);
    // The new pair logs in again.
    let token = r.form_token();
    let r = b
        .go(&s, from_browser(b.form("/login", &alice_with(&token))))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
}
