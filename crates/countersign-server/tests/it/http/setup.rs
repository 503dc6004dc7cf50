//! `/setup`, the first-admin link, in-process: the happy path in the default configuration
//! (Secure `__Host-` cookies, the browser's same-origin headers), the one 404 for a bad,
//! expired or used token and for a server that has users, the form again for bad input,
//! the CSRF guard, and concurrent submissions making exactly one admin.

use countersign::setup::SETUP_TOKEN_LIFETIME_SECS;

use super::*;

/// Open the link (as `serve` does at start) and return its path.
async fn open_link(s: &Server) -> String {
    let secret = s.app.engine().open_setup().await.unwrap().unwrap();
    format!("/setup?token={}", secret.expose())
}

/// The token in a link path.
fn token_of(link: &str) -> &str {
    link.strip_prefix("/setup?token=").unwrap()
}

fn fields<'a>(name: &'a str, password: &'a str, confirm: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("username", name),
        ("password", password),
        ("password_confirm", confirm),
    ]
}

/// The hidden `token` field of the setup form.
fn hidden_token(r: &Resp) -> String {
    let marker = "name=\"token\" value=\"";
    let start = r.body.find(marker).unwrap_or_else(|| panic!("{r:?}")) + marker.len();
    let end = r.body[start..].find('"').unwrap() + start;
    r.body[start..end].to_owned()
}

/// Submit the form shown at `link`, with its hidden setup token and CSRF token.
async fn submit_setup(b: &mut Browser, s: &Server, link: &str, fields: &[(&str, &str)]) -> Resp {
    let page = b.get(s, link).await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    let token = hidden_token(&page);
    let csrf = page.form_token();
    let mut all = fields.to_vec();
    all.push(("token", &token));
    all.push(("csrf_token", &csrf));
    let request = b.form("/setup", &all);
    b.go(s, request).await
}

fn assert_gone(r: &Resp) {
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{r:?}");
    assert!(
        r.header("content-type").unwrap().starts_with("text/html"),
        "{r:?}"
    );
    assert!(r.body.contains("Setup link not valid"), "{r:?}");
    assert!(r.cookie(SESSION).is_none(), "{r:?}");
    assert!(
        r.cookie(CSRF_COOKIE).is_none(),
        "no form, no CSRF cookie: {r:?}"
    );
}

#[tokio::test]
async fn the_link_makes_the_first_admin_and_signs_them_in() {
    let s = Server::new();
    let link = open_link(&s).await;
    let mut b = Browser::new();
    let page = b.get(&s, &link).await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_no_store(&page);
    for id in [
        "id=\"username\"",
        "id=\"password\"",
        "id=\"password_confirm\"",
        "id=\"submit\"",
        "action=\"/setup\"",
    ] {
        assert!(page.body.contains(id), "{id}: {page:?}");
    }
    assert_eq!(hidden_token(&page), token_of(&link));
    assert!(page.cookie(CSRF_COOKIE).is_some(), "{page:?}");

    let r = submit_setup(&mut b, &s, &link, &fields("root", PW, PW)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(r.header("location"), Some("/"));
    let session = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with(SESSION))
        .unwrap()
        .to_owned();
    for attr in ["Path=/", "HttpOnly", "Secure", "SameSite=Lax"] {
        assert!(session.contains(attr), "{session}");
    }
    assert!(b.get(&s, "/").await.body.contains("Logged in as root"));
    let me = b.get(&s, "/api/me").await.json();
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("root"), Some("admin"))
    );
    // The admin can use admin routes.
    assert_eq!(b.get(&s, "/api/users").await.status, StatusCode::OK);

    // Used: the link is gone, for GET and POST, whoever asks.
    let mut other = Browser::new();
    assert_gone(&other.get(&s, &link).await);
    let csrf = other.get(&s, "/login").await.form_token();
    let mut again = fields("second", PW, PW).to_vec();
    again.push(("token", token_of(&link)));
    again.push(("csrf_token", &csrf));
    assert_gone(&other.go(&s, other.form("/setup", &again)).await);
    let users = s.app.engine().list_users().await.unwrap();
    assert_eq!(users.len(), 1);
}

#[tokio::test]
async fn a_bad_expired_or_used_token_and_existing_users_all_get_the_same_404() {
    // No link was ever opened.
    let s = Server::new();
    let mut b = Browser::new();
    let never = b.get(&s, "/setup?token=abc").await;
    assert_gone(&never);
    assert_gone(&b.get(&s, "/setup").await);

    // Wrong, truncated, empty, repeated parameter, malformed query.
    let s = Server::new();
    let link = open_link(&s).await;
    let token = token_of(&link);
    for path in [
        "/setup".to_owned(),
        "/setup?token=".to_owned(),
        format!("/setup?token={}", &token[..42]),
        format!("/setup?token={token}x"),
        format!("/setup?token={}", "A".repeat(43)),
        "/setup?token=%ZZ".to_owned(),
    ] {
        let r = b.get(&s, &path).await;
        assert_gone(&r);
        assert_eq!(r.body, never.body, "{path}: one page for every reason");
    }
    // The right token still works after those guesses.
    assert_eq!(b.get(&s, &link).await.status, StatusCode::OK);

    // Expired: valid until one hour after it was issued.
    s.clock.advance(SETUP_TOKEN_LIFETIME_SECS - 1);
    assert_eq!(b.get(&s, &link).await.status, StatusCode::OK);
    s.clock.advance(1);
    let expired = b.get(&s, &link).await;
    assert_gone(&expired);
    assert_eq!(expired.body, never.body);

    // A user made some other way (the CLI's `user add` while the server runs).
    let s = Server::new();
    let link = open_link(&s).await;
    let page = b.get(&s, &link).await;
    let csrf = page.form_token();
    s.add_user("alice", "user").await;
    let users_exist = b.get(&s, &link).await;
    assert_gone(&users_exist);
    assert_eq!(users_exist.body, never.body);
    let mut post = fields("root", PW, PW).to_vec();
    post.push(("token", token_of(&link)));
    post.push(("csrf_token", &csrf));
    assert_gone(&b.go(&s, b.form("/setup", &post)).await);
    let users = s.app.engine().list_users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].username.as_str(), "alice");

    // No link is issued at all once a user exists.
    assert!(s.app.engine().open_setup().await.unwrap().is_none());
}

#[tokio::test]
async fn bad_input_shows_the_form_again_and_keeps_the_link() {
    let s = Server::new();
    let link = open_link(&s).await;
    let mut b = Browser::new();
    for (name, password, confirm, status, message) in [
        (
            "root",
            PW,
            "something else entirely",
            StatusCode::UNPROCESSABLE_ENTITY,
            "The two passwords do not match.",
        ),
        (
            "root",
            "short",
            "short",
            StatusCode::UNPROCESSABLE_ENTITY,
            "at least 8",
        ),
        (
            "root",
            "password123",
            "password123",
            StatusCode::UNPROCESSABLE_ENTITY,
            "common",
        ),
        (
            "",
            PW,
            PW,
            StatusCode::UNPROCESSABLE_ENTITY,
            "A username is 1 to 64",
        ),
        (
            "<b>root</b>",
            PW,
            PW,
            StatusCode::UNPROCESSABLE_ENTITY,
            "A username is 1 to 64",
        ),
    ] {
        let r = submit_setup(&mut b, &s, &link, &fields(name, password, confirm)).await;
        assert_eq!(r.status, status, "{name:?}: {r:?}");
        assert!(r.body.contains(message), "{name:?}: {r:?}");
        assert!(r.body.contains("role=\"alert\""));
        // The form again: the same setup token, the username as typed (escaped), no
        // password echoed, and its CSRF token still works.
        assert_eq!(hidden_token(&r), token_of(&link));
        assert!(!r.body.contains(password), "{r:?}");
        assert!(!r.body.contains("<b>root</b>"));
        assert!(r.cookie(SESSION).is_none());
    }
    assert!(s.app.engine().list_users().await.unwrap().is_empty());

    // The form shown again submits as it is.
    let r = submit_setup(&mut b, &s, &link, &fields("root", PW, "mismatch!")).await;
    let mut fixed = fields("root", PW, PW).to_vec();
    let token = hidden_token(&r);
    let csrf = r.form_token();
    fixed.push(("token", &token));
    fixed.push(("csrf_token", &csrf));
    let r = b.go(&s, b.form("/setup", &fixed)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");

    // A form body that cannot be read (a field twice): 400, the page.
    let s = Server::new();
    let link = open_link(&s).await;
    let mut b = Browser::new();
    let csrf = b.get(&s, &link).await.form_token();
    let mut req = b.form("/setup", &[("csrf_token", &csrf)]);
    *req.body_mut() = Body::from(format!(
        "csrf_token={csrf}&token={}&username=a&username=b",
        token_of(&link)
    ));
    let r = b.go(&s, req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    // Still usable.
    assert_eq!(b.get(&s, &link).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_setup_form_needs_its_csrf_token_and_a_same_origin_request() {
    let s = Server::new();
    let link = open_link(&s).await;
    let token = token_of(&link).to_owned();
    let mut b = Browser::new();
    let csrf = b.get(&s, &link).await.form_token();
    let creds = fields("root", PW, PW);
    let with = |extra: &[(&'static str, &str)]| {
        let mut all: Vec<(&str, &str)> = creds.to_vec();
        all.push(("token", &token));
        all.extend_from_slice(extra);
        all.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
    };
    let form = |b: &Browser, all: &[(String, String)]| {
        let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        b.form("/setup", &pairs)
    };

    // No CSRF token.
    let r = b.go(&s, form(&b, &with(&[]))).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "csrf_failed")
    );
    // Another browser's token.
    let other = Browser::new().get(&s, &link).await.form_token();
    let r = b.go(&s, form(&b, &with(&[("csrf_token", &other)]))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A cross-site page posting the right token: as a browser that sends
    // `Sec-Fetch-Site` says it, and as an older one that sends only `Origin`.
    let mut req = form(&b, &with(&[("csrf_token", &csrf)]));
    req.headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    req.headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert_eq!(b.go(&s, req).await.status, StatusCode::FORBIDDEN);
    let mut req = form(&b, &with(&[("csrf_token", &csrf)]));
    req.headers_mut().remove("sec-fetch-site");
    req.headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    assert_eq!(b.go(&s, req).await.status, StatusCode::FORBIDDEN);
    assert!(s.app.engine().list_users().await.unwrap().is_empty());
    // None of that used the link up.
    let r = b.go(&s, form(&b, &with(&[("csrf_token", &csrf)]))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submissions_make_exactly_one_admin() {
    let s = Server::new();
    let link = open_link(&s).await;
    // Eight browsers each load the form, then all submit at once.
    let mut requests = Vec::new();
    for i in 0..8 {
        let mut b = Browser::from_addr(&format!("192.0.2.{}:40000", i + 1));
        let page = b.get(&s, &link).await;
        let csrf = page.form_token();
        let name = format!("admin{i}");
        let all = [
            ("username", name.as_str()),
            ("password", PW),
            ("password_confirm", PW),
            ("token", token_of(&link)),
            ("csrf_token", &csrf),
        ];
        requests.push(b.form("/setup", &all));
    }
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let router = s.router.clone();
            tokio::spawn(async move { router.oneshot(request).await.unwrap().status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let made = statuses
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    let gone = statuses
        .iter()
        .filter(|s| **s == StatusCode::NOT_FOUND)
        .count();
    assert_eq!((made, gone), (1, 7), "{statuses:?}");
    let users = s.app.engine().list_users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].role, Role::admin());
}

#[tokio::test]
async fn the_route_is_documented() {
    let s = Server::new();
    let doc = s.get("/openapi.json").await.json();
    let setup = &doc["paths"]["/setup"];
    assert!(setup["get"]["responses"]["200"].is_object(), "{setup}");
    assert!(setup["get"]["responses"]["404"].is_object(), "{setup}");
    for status in ["303", "400", "403", "404", "422", "503"] {
        assert!(
            setup["post"]["responses"][status].is_object(),
            "{status}: {setup}"
        );
    }
}
