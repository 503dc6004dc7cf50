//! Two `countersign serve` processes sharing one PostgreSQL database (users) and one Redis
//! (sessions, refresh families, denylist, counters) behave as one server.

use reqwest::StatusCode;
use reqwest::header::COOKIE;

use super::support::{
    Cred, PW, PgDatabase, RedisPrefix, Server, access_token, add_user, assert_clean, client, cs,
    form_login, form_token, get_with, poll, readyz, redis_url, secret_key, token_request,
    with_password,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_and_redis_act_as_one() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let Some(redis) = RedisPrefix::new() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    // Trust auth ignores the password, so it can be put in the URL to prove it never
    // reaches a log.
    let db_password = "pg-hunter2-e2e";
    let db_url = with_password(&db.url, db_password);
    let session_store = format!("{}/0", redis_url().trim_end_matches('/'));
    let storage: Vec<&str> = vec![
        "--database-url",
        &db_url,
        "--session-store",
        &session_store,
        "--redis-prefix",
        &redis.prefix,
    ];
    let key = secret_key();
    let env = [("SECRET_KEY", key.as_str())];
    let mut serve_args = storage.clone();
    serve_args.extend(["--db-max-connections", "4"]);

    // Both start at once against the new, empty database: the migrations must not race.
    let a = Server::spawn(cwd, &serve_args, &env);
    let b = Server::spawn(cwd, &serve_args, &env);
    let (a, b) = (a.ready(), b.ready());
    let http = client();
    for s in [&a, &b] {
        let (status, body) = readyz(&http, s).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            (&body["users"], &body["sessions"]),
            (&"ok".into(), &"ok".into())
        );
    }

    // A user added by the CLI, while both run.
    add_user(cwd, &storage, "alice", "admin");

    // Log in on A; the cookie and the bearer token work on B.
    let cookie = form_login(&http, &a, "alice").await;
    let (status, _, body) = get_with(&http, &b, "/protected", Cred::Cookie(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["message"],
        "Hello alice, you have access to this protected route."
    );
    let (_, _, me) = get_with(&http, &b, "/api/me", Cred::Cookie(&cookie)).await;
    assert_eq!(me["auth"], "session");
    let access = access_token(&http, &a, "alice").await;
    let (status, _, body) = get_with(&http, &b, "/protected", Cred::Bearer(&access)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The CLI reads sessions from Redis.
    let mut list = vec!["session", "list", "alice"];
    list.extend(&storage);
    let (code, out, err) = cs(cwd, &list, "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().count(),
        2,
        "a header and alice's session:\n{out}"
    );

    // Log out on B; A refuses the old cookie once its cache entry (≤ cache_ttl, 1 s)
    // has gone.
    let home = http
        .get(b.url("/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = http
        .post(b.url("/logout"))
        .header(COOKIE, &cookie)
        .header("origin", &b.base)
        .form(&[("csrf_token", form_token(&home))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (status, _, body) = get_with(&http, &b, "/protected", Cred::Cookie(&cookie)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "at once on B: {body}");
    poll("A refuses the cookie B logged out", || async {
        let (status, _, body) = get_with(&http, &a, "/protected", Cred::Cookie(&cookie)).await;
        match status {
            StatusCode::OK => None,
            StatusCode::UNAUTHORIZED => {
                assert_eq!(body["error"], "invalid_session");
                Some(())
            }
            other => panic!("{other}: {body}"),
        }
    })
    .await;

    // Another user added by the CLI is seen by both.
    add_user(cwd, &storage, "bob", "user");
    for s in [&a, &b] {
        let token = access_token(&http, s, "bob").await;
        let (_, _, me) = get_with(&http, s, "/api/me", Cred::Bearer(&token)).await;
        assert_eq!(me["username"], "bob");
    }

    // Failed logins spread over A and B count toward one throttle: five failures per
    // account, then 429, whichever instance answers.
    for attempt in 0..5 {
        let s = if attempt % 2 == 0 { &a } else { &b };
        let r = token_request(&http, s, "bob", "not bob's password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    for s in [&b, &a] {
        let r = token_request(&http, s, "bob", PW).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{}", s.base);
        assert!(r.headers().contains_key("retry-after"));
    }

    // `session revoke-all` from the CLI, against Redis, ends alice's sessions and tokens
    // on both instances.
    let cookie2 = form_login(&http, &b, "alice").await;
    let access2 = access_token(&http, &b, "alice").await;
    for (s, cred) in [(&a, Cred::Cookie(&cookie2)), (&a, Cred::Bearer(&access2))] {
        let (status, _, body) = get_with(&http, s, "/protected", cred).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let mut revoke = vec!["session", "revoke-all", "alice"];
    revoke.extend(&storage);
    let (code, out, err) = cs(cwd, &revoke, "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ended 1 session"), "{out}");
    for s in [&a, &b] {
        for cred in [
            Cred::Cookie(&cookie2),
            Cred::Bearer(&access2),
            Cred::Bearer(&access),
        ] {
            poll("the CLI's revoke-all reaches both instances", || async {
                let (status, _, body) = get_with(&http, s, "/protected", cred).await;
                match status {
                    StatusCode::OK => None,
                    StatusCode::UNAUTHORIZED => Some(()),
                    other => panic!("{other}: {body}"),
                }
            })
            .await;
        }
    }

    // `migrate` alone: nothing left to do, the URL shown redacted.
    let mut migrate = vec!["migrate"];
    migrate.extend(&storage);
    let (code, out, err) = cs(cwd, &migrate, "");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("is up to date") && out.contains("[redacted]"),
        "{out}"
    );
    assert!(!out.contains(db_password), "{out}");

    let (status_a, log_a) = a.stop();
    let (status_b, log_b) = b.stop();
    assert_eq!(status_a.code(), Some(0), "{log_a}");
    assert_eq!(status_b.code(), Some(0), "{log_b}");
    let log = log_a + &log_b;
    assert!(
        log.contains(&format!("key prefix {:?}", redis.prefix)),
        "the session store is named in the log:\n{log}"
    );
    assert!(log.contains("[redacted]"), "{log}");
    let cookie_value = cookie.split_once('=').unwrap().1;
    assert_clean(
        &log,
        &[PW, db_password, &access, &access2, cookie_value, &key],
    );
}
