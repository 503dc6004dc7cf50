//! The first-run link with the real binary in its default configuration (`Secure`,
//! `__Host-` cookies on plain HTTP at 127.0.0.1): read from the log, followed with an HTTP
//! client sending what a browser sends, the admin made and listed by `user list`; no link
//! once a user exists; the link gone when the CLI adds a user while the server runs; the
//! token never in an access log line.

use super::*;

const LINK: &str = "first run: create the admin at ";

/// The link in the first-run log line.
fn link_in(line: &str) -> String {
    let start = line.find(LINK).unwrap() + LINK.len();
    line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect()
}

/// The value of the hidden form field `name`.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// `countersign user list` on `data`.
fn user_list(data: &Path) -> String {
    let (code, out, err) = cs(
        data.parent().unwrap(),
        &["user", "list", "--data-dir", data.to_str().unwrap()],
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    out
}

/// Make a request and see it answered, so that anything `serve` logs before it accepts
/// connections has been logged.
async fn answered(http: &reqwest::Client, s: &Server) {
    let r = http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_link_makes_the_first_admin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start_default(&data, &[], &[]);
    let line = s.wait_for(LINK);
    let link = link_in(&line);
    let prefix = format!("{}/setup?token=", s.base);
    assert!(link.starts_with(&prefix), "{line}");
    let token = link[prefix.len()..].to_owned();
    assert_eq!(token.len(), 43, "{line}");

    let http = client();
    let page = http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csrf_cookie = set_cookie(page.headers(), "__Host-countersign-csrf").unwrap();
    let html = page.text().await.unwrap();
    assert_eq!(hidden(&html, "token"), token);
    let csrf = hidden(&html, "csrf_token");

    // The form as Chromium posts it from that page.
    let r = http
        .post(s.url("/setup"))
        .header(COOKIE, format!("__Host-countersign-csrf={csrf_cookie}"))
        .header("origin", &s.base)
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("username", "root"),
            ("password", PW),
            ("password_confirm", PW),
            ("token", &token),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/");
    let session = set_cookie(r.headers(), "__Host-countersign").unwrap();
    let home = http
        .get(s.url("/"))
        .header(COOKIE, format!("__Host-countersign={session}"))
        .send()
        .await
        .unwrap();
    assert!(home.text().await.unwrap().contains("Logged in as root"));

    // Used up.
    let again = http.get(&link).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let listed = user_list(&data);
    let row = listed.lines().find(|l| l.contains("root")).unwrap();
    assert!(row.contains("admin"), "{listed}");

    let (status, log) = s.stop();
    assert_eq!(status.code(), Some(0), "{log}");
    // The token is shown once, in the first-run line; the access log has the path only.
    assert_eq!(log.matches(&token).count(), 1, "{log}");
    assert_eq!(log.matches("token=").count(), 1, "{log}");
    assert!(log.contains("/setup"), "the requests were logged: {log}");
    assert_clean(&log, &[PW, &session, &csrf_cookie]);

    // A restart with a user: no link.
    let s = Server::start_default(&data, &[], &[]);
    answered(&http, &s).await;
    let old = http
        .get(s.url(&format!("/setup?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::NOT_FOUND);
    let (status, log) = s.stop();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!log.contains("first run"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_is_gone_once_the_cli_adds_a_user() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start_default(&data, &[], &[]);
    let link = link_in(&s.wait_for(LINK));
    let http = client();
    assert_eq!(
        http.get(&link).send().await.unwrap().status(),
        StatusCode::OK
    );
    add_user(&data, "alice", "admin");
    assert_eq!(
        http.get(&link).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let (status, log) = s.stop();
    assert_eq!(status.code(), Some(0), "{log}");
}
