//! Redis, the session store, goes away and comes back. The test runs its own
//! `redis-server` (no persistence, a password) on a free port so it can kill it.
//!
//! What must hold (docs/operations.md, "Redis down"):
//! - session-authenticated requests answer 503 with `Retry-After`, never 200, never 500,
//!   never a 401 that would log the user out;
//! - a bearer token needs its revocation check from Redis: 503 with `Retry-After`, also on
//!   an instance whose cache holds the answer (the invalidation subscription went with
//!   Redis, so the cache is bypassed: nothing revoked meanwhile can be accepted);
//! - logins are 503, `/readyz` is 503 naming the session store;
//! - once Redis is back, service resumes without a restart. Redis without persistence
//!   comes back empty: sessions made before are gone (401), tokens still verify.

use reqwest::StatusCode;
use reqwest::header::COOKIE;

use super::support::{
    COOKIE_NAME, ChildRedis, Cred, PW, Server, access_token, add_user, assert_clean, client,
    form_login, get_with, poll, post_credentials, readyz, secret_key, set_cookie, token_request,
};

/// `status` is 503 with a `Retry-After` of at least one second.
fn assert_503(what: &str, status: StatusCode, retry: Option<u64>, body: &serde_json::Value) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
    assert!(
        retry.is_some_and(|s| s >= 1),
        "{what}: Retry-After {retry:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_is_503_and_service_recovers_by_itself() {
    let redis_password = "redis-hunter2-e2e";
    let Some(mut redis) = ChildRedis::start(&["--requirepass", redis_password]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let data = cwd.join("data");
    let data_arg = data.to_str().unwrap();
    let redis_url = redis.url(Some(redis_password));
    let key = secret_key();
    let env = [("SECRET_KEY", key.as_str())];
    // S reads the store on every request; C caches answers for an hour. Users in one
    // SQLite file, sessions in the private Redis.
    let common = [
        "--data-dir",
        data_arg,
        "--session-store",
        &redis_url,
        "--redis-timeout",
        "300ms",
    ];
    let strict: Vec<&str> = common.iter().copied().chain(["--cache-ttl", "0"]).collect();
    let cached: Vec<&str> = common
        .iter()
        .copied()
        .chain(["--cache-ttl", "1h"])
        .collect();
    let s = Server::start(cwd, &strict, &env);
    let c = Server::start(cwd, &cached, &env);
    add_user(cwd, &["--data-dir", data_arg], "alice", "user");
    let http = client();

    let cookie = form_login(&http, &s, "alice").await;
    let (status, _, _) = get_with(&http, &s, "/protected", Cred::Cookie(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    // `seen` is checked once on C (its revocation answers are now cached there);
    // `unseen` never reaches C before the outage.
    let seen = access_token(&http, &s, "alice").await;
    let unseen = access_token(&http, &s, "alice").await;
    let (status, _, _) = get_with(&http, &c, "/protected", Cred::Bearer(&seen)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = readyz(&http, &s).await;
    assert_eq!(status, StatusCode::OK);
    poll("C subscribes to invalidations", || async {
        let (_, body) = readyz(&http, &c).await;
        (body["cache"] == "subscribed").then_some(())
    })
    .await;

    redis.kill();

    for round in 0..5 {
        let (status, retry, body) = get_with(&http, &s, "/protected", Cred::Cookie(&cookie)).await;
        assert_503(
            &format!("session /protected #{round}"),
            status,
            retry,
            &body,
        );
        assert_eq!(body["error"], "unavailable");
    }
    let (status, retry, body) = get_with(&http, &s, "/api/me", Cred::Cookie(&cookie)).await;
    assert_503("session /api/me", status, retry, &body);
    // The pages too: 503, and the cookie is kept (not cleared as for a bad session).
    let r = http
        .get(s.url("/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(set_cookie(r.headers(), COOKIE_NAME), None);
    // With the cache off, every bearer request needs the store for its revocation check.
    let (status, retry, body) = get_with(&http, &s, "/protected", Cred::Bearer(&seen)).await;
    assert_503("bearer on S", status, retry, &body);
    // C's subscription went with Redis: it bypasses its cache (a token revoked during the
    // outage, on another instance, could not be announced), so `seen` needs Redis too.
    poll("C bypasses its cache", || async {
        let (_, body) = readyz(&http, &c).await;
        (body["cache"] == "bypassed").then_some(())
    })
    .await;
    for token in [&seen, &unseen] {
        let (status, retry, body) = get_with(&http, &c, "/protected", Cred::Bearer(token)).await;
        assert_503("bearer on C", status, retry, &body);
    }
    // Logins need the throttle counters: 503, for the API and the form.
    let r = token_request(&http, &s, "alice", PW).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    let r = post_credentials(&http, &s.base, "/login", "alice", PW)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Not ready, and says which store.
    for server in [&s, &c] {
        let (status, body) = readyz(&http, server).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["users"], "ok");
        assert_eq!(body["sessions"], "unavailable");
    }

    // Redis returns (empty: it kept nothing). No restart of the servers.
    redis.restart();
    for server in [&s, &c] {
        poll("the server reports ready again", || async {
            let (status, body) = readyz(&http, server).await;
            match status {
                StatusCode::OK => Some(()),
                StatusCode::SERVICE_UNAVAILABLE => None,
                other => panic!("{other}: {body}"),
            }
        })
        .await;
    }
    poll("C subscribes again", || async {
        let (_, body) = readyz(&http, &c).await;
        (body["cache"] == "subscribed").then_some(())
    })
    .await;
    // The old session went with Redis's memory: 401, not 503 and not 200.
    let (status, _, body) = get_with(&http, &s, "/protected", Cred::Cookie(&cookie)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_session");
    // Tokens verify again everywhere; new logins work.
    for (server, token) in [(&s, &seen), (&s, &unseen), (&c, &unseen)] {
        let (status, _, body) = get_with(&http, server, "/protected", Cred::Bearer(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let fresh = form_login(&http, &s, "alice").await;
    let (status, _, _) = get_with(&http, &c, "/protected", Cred::Cookie(&fresh)).await;
    assert_eq!(status, StatusCode::OK);

    let (status_s, log_s) = s.stop();
    let (status_c, log_c) = c.stop();
    assert_eq!(status_s.code(), Some(0), "{log_s}");
    assert_eq!(status_c.code(), Some(0), "{log_c}");
    let log = log_s + &log_c;
    let cookie_value = cookie.split_once('=').unwrap().1;
    assert_clean(
        &log,
        &[redis_password, PW, &seen, &unseen, cookie_value, &key],
    );
}

/// A store that cannot be reached at start stops the start (exit 2) with a message that
/// names the store, its password redacted.
#[test]
fn unreachable_stores_stop_the_start_without_showing_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = super::support::free_port();
    let redis = format!("redis://:hunter2-redis@127.0.0.1:{port}/0");
    let pg = format!("postgres://app:hunter2-pg@127.0.0.1:{port}/db");
    for (args, needle) in [
        (
            vec![
                "--session-store",
                redis.as_str(),
                "--redis-timeout",
                "200ms",
            ],
            "Redis",
        ),
        (vec!["--database-url", pg.as_str()], "127.0.0.1"),
    ] {
        for sub in [
            &["serve", "--addr", "127.0.0.1:0"][..],
            &["user", "list"][..],
        ] {
            let out = super::support::command(dir.path())
                .args(sub)
                .arg("--data-dir")
                .arg(&data)
                .args(&args)
                .env("SECRET_KEY", secret_key())
                .output()
                .unwrap();
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert_eq!(out.status.code(), Some(2), "{sub:?} {stderr}");
            assert!(stderr.contains(needle), "{sub:?}: {stderr}");
            assert!(stderr.contains("[redacted]"), "{sub:?}: {stderr}");
            assert!(!stderr.contains("hunter2"), "{sub:?}: {stderr}");
        }
    }
}
