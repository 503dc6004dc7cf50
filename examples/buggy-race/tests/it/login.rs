//! Logging in through the form (pre-session CSRF, session cookie), failures, throttling,
//! fixation, and logout.

use axum::body::Body;
use http::StatusCode;

use crate::common::*;

#[tokio::test]
async fn the_form_logs_in_and_the_page_names_me() {
    let fx = fixture().await;
    let mut b = fx.browser();

    b.get("/buggy").await.assert_redirect("/login");
    b.get("/").await.assert_redirect("/buggy");

    let page = b.get("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<h1>Log in</h1>"), "{page:?}");
    let pre = page.set_cookies();
    assert_eq!(pre.len(), 1, "{pre:?}");
    assert!(pre[0].starts_with(&format!("{PRE_SESSION}=")), "{pre:?}");
    assert!(pre[0].contains("HttpOnly; Secure; SameSite=Lax"), "{pre:?}");
    let token = page.csrf();

    let reply = b
        .post_form(
            "/login",
            &[
                ("csrf_token", &token),
                ("username", "alice"),
                ("password", PW),
            ],
        )
        .await;
    reply.assert_redirect("/buggy");
    let cookie = reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&format!("{SESSION}=")))
        .unwrap();
    assert!(
        cookie.ends_with("; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Lax"),
        "{cookie}"
    );

    let page = b.get("/buggy").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Logged in as <strong>alice</strong>"));
    assert!(!page.body.contains("All buggies"), "alice is no admin");
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(page.header("content-security-policy").is_some());

    // Logged in, the login page sends me to my buggy.
    b.get("/login").await.assert_redirect("/buggy");
}

#[tokio::test]
async fn bad_credentials_are_401_with_the_form_again() {
    let fx = fixture().await;
    for (username, password) in [("alice", "not alice's password"), ("nobody", PW), ("", "")] {
        let mut b = fx.browser();
        let reply = b.login(username, password).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
        assert!(reply.body.contains("Invalid username or password"));
        assert!(
            reply
                .body
                .contains(&format!(r#"name="username" value="{username}""#)),
            "the name is kept"
        );
        assert!(!reply.body.contains(password) || password.is_empty());
        assert!(b.session().is_none());
        // The form is usable again: it comes with a new pre-session pair.
        let again = b
            .post_form(
                "/login",
                &[
                    ("csrf_token", &reply.csrf()),
                    ("username", "alice"),
                    ("password", PW),
                ],
            )
            .await;
        again.assert_redirect("/buggy");
    }
}

#[tokio::test]
async fn the_username_is_escaped_when_shown_again() {
    let fx = fixture().await;
    let mut b = fx.browser();
    let reply = b.login(r#""><script>alert(1)</script>"#, "whatever").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(!reply.body.contains("<script>alert(1)"), "{}", reply.body);
    assert!(
        reply
            .body
            .contains(r#"value="&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;""#),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn repeated_failures_are_throttled() {
    let fx = fixture().await;
    let mut b = fx.browser();
    for _ in 0..5 {
        let reply = b.login("alice", "wrong password, again").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let reply = b.login("alice", PW).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{reply:?}");
    assert!(reply.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert!(reply.body.contains("Too many failed logins"));
    assert!(b.session().is_none());
    // Other accounts are not locked by alice's failures.
    fx.bob().await;
}

#[tokio::test]
async fn logging_in_again_replaces_the_session() {
    let fx = fixture().await;
    let mut b = fx.alice().await;
    let old = b.session().unwrap();
    // A logged-in browser's login form carries its session's token.
    let token = b.csrf().await;
    let reply = b
        .post_form(
            "/login",
            &[
                ("csrf_token", &token),
                ("username", "bob"),
                ("password", BOB_PW),
            ],
        )
        .await;
    reply.assert_redirect("/buggy");
    let new = b.session().unwrap();
    assert_ne!(old, new, "a new session id at login");
    assert!(
        b.get("/buggy")
            .await
            .body
            .contains("Logged in as <strong>bob</strong>")
    );
    // The old session is over.
    let replay = fx
        .call(
            get("/api/buggy")
                .header("cookie", format!("{SESSION}={old}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay.body, INVALID_SESSION);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let fx = fixture().await;
    let mut b = fx.alice().await;
    let old = b.session().unwrap();
    let token = b.csrf().await;
    let reply = b.post_form("/logout", &[("csrf_token", &token)]).await;
    reply.assert_redirect("/login");
    assert!(
        reply
            .set_cookies()
            .contains(&"__Host-countersign=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"),
        "{reply:?}"
    );
    assert!(b.session().is_none());
    b.get("/buggy").await.assert_redirect("/login");

    // Replaying the old cookie: the record is gone.
    let mut replay = fx.browser();
    replay.jar.insert(SESSION.to_owned(), old);
    let api = replay.get("/api/buggy").await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.body, INVALID_SESSION);
    replay
        .jar
        .insert(SESSION.to_owned(), "forged.value".to_owned());
    replay.get("/buggy").await.assert_redirect("/login");
}

#[tokio::test]
async fn unreadable_login_forms_are_4xx() {
    let fx = fixture().await;
    let mut b = fx.browser();
    let token = b.get("/login").await.csrf();
    // The token in a header, the body not a form: the guard passes, the form is refused.
    let reply = b
        .send(
            http::Request::builder()
                .method("POST")
                .uri("/login")
                .header("host", HOST)
                .header("x-csrf-token", &token)
                .header("content-type", "application/json"),
            Body::from(r#"{"username":"alice"}"#),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{reply:?}"
    );
    assert!(b.session().is_none());
}
