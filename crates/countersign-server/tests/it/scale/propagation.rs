//! Several instances act as one at cache speed (issue: shared login throttling, revocation
//! seen everywhere within 100 ms):
//!
//! - login throttling is one atomic store operation per attempt: wrong passwords
//!   alternated between A and B hit the limit at the same count as on one instance, and 50
//!   concurrent wrong attempts spread over A and B get no more argon2 checks than the limit
//!   (counted by `countersign_password_verifications_total` in `/metrics`);
//! - a revocation on A (logout, token revocation) is refused on B within 100 ms, 200 times
//!   in a row, with the sessions in Redis (pub/sub) and in PostgreSQL (`LISTEN`/`NOTIFY`),
//!   although B's cache entries live 1 s: only the push can explain it;
//! - B's subscription connection killed (`CLIENT KILL … TYPE pubsub`, held down by an ACL;
//!   `pg_terminate_backend` of the `LISTEN` backend): B says `"cache": "bypassed"` in
//!   `/readyz` and `countersign_cache_bypassed 1` in `/metrics`, serves from the store
//!   (never a stale yes), and subscribes again by itself;
//! - `user disable` (CLI) and `POST /api/users/{username}/disable` (admin API) end a
//!   user's sessions and tokens on every instance within the same bound and refuse their
//!   logins until `enable`;
//! - a single-process SQLite server keeps its local cache (`"cache": "local"`).
//!
//! Times: the bound of 100 ms is what the issue asks; the polls are 5 ms apart and every
//! wait is bounded.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::{Value, json};

use super::support::{
    ChildRedis, Cred, PW, PgDatabase, Server, access_token, add_user, client, cs, form_login,
    form_token, get_with, poll, readyz, secret_key, token_request,
};

/// How soon B must refuse what A revoked.
const BOUND: Duration = Duration::from_millis(100);
/// The pause between two polls of B.
const POLL: Duration = Duration::from_millis(5);
/// Revocations measured per store.
const ROUNDS: usize = 200;

/// The value of the sample `name` (no labels) in `/metrics`.
async fn metric(http: &reqwest::Client, s: &Server, name: &str) -> f64 {
    let text = http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Wait (bounded) until `/readyz` says `cache` is `want`.
async fn wait_cache(http: &reqwest::Client, s: &Server, want: &str) {
    poll(&format!("{} says cache {want}", s.base), || async {
        let (_, body) = readyz(http, s).await;
        (body["cache"] == want).then_some(())
    })
    .await;
}

/// Poll B with `cred` every 5 ms until it is refused (401): how long that took. Fails when
/// B still accepts after [`BOUND`], or answers anything else.
async fn refused_within_bound(
    http: &reqwest::Client,
    b: &Server,
    cred: Cred<'_>,
    what: &str,
) -> Duration {
    let start = Instant::now();
    loop {
        let (status, _, body) = get_with(http, b, "/protected", cred).await;
        match status {
            StatusCode::UNAUTHORIZED => return start.elapsed(),
            StatusCode::OK => {}
            other => panic!("{what}: B answered {other}: {body}"),
        }
        let waited = start.elapsed();
        assert!(
            waited <= BOUND,
            "{what}: B still accepted it {waited:?} after A revoked it"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// `POST /logout` on `s` with `cookie` (the form's CSRF token from `/`).
async fn logout(http: &reqwest::Client, s: &Server, cookie: &str) {
    let home = http
        .get(s.url("/"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = http
        .post(s.url("/logout"))
        .header(COOKIE, cookie)
        .header("origin", &s.base)
        .form(&[("csrf_token", form_token(&home))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

/// `POST /api/token/revoke` on `s`.
async fn revoke_token(http: &reqwest::Client, s: &Server, token: &str) {
    let r = http
        .post(s.url("/api/token/revoke"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// One round: a credential made on A and used on B (so B caches it), revoked on A, then
/// B polled. Even rounds use a session cookie and `/logout`, odd ones a bearer token and
/// `/api/token/revoke`. How long B took to refuse it.
async fn round(http: &reqwest::Client, a: &Server, b: &Server, i: usize) -> Duration {
    if i.is_multiple_of(2) {
        let cookie = form_login(http, a, "alice").await;
        let (status, _, body) = get_with(http, b, "/protected", Cred::Cookie(&cookie)).await;
        assert_eq!(status, StatusCode::OK, "round {i}: {body}");
        logout(http, a, &cookie).await;
        refused_within_bound(
            http,
            b,
            Cred::Cookie(&cookie),
            &format!("round {i}, logout"),
        )
        .await
    } else {
        let token = access_token(http, a, "alice").await;
        let (status, _, body) = get_with(http, b, "/protected", Cred::Bearer(&token)).await;
        assert_eq!(status, StatusCode::OK, "round {i}: {body}");
        revoke_token(http, a, &token).await;
        refused_within_bound(http, b, Cred::Bearer(&token), &format!("round {i}, revoke")).await
    }
}

/// [`ROUNDS`] rounds; prints the p50 and p99 of B's refusal times.
async fn rounds(http: &reqwest::Client, a: &Server, b: &Server, store: &str) {
    let mut times = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        times.push(round(http, a, b, i).await);
    }
    times.sort_unstable();
    eprintln!(
        "{store}: B refused {ROUNDS} revocations made on A after p50 {:?}, p99 {:?}, max {:?} \
         (polls every {POLL:?})",
        times[ROUNDS / 2],
        times[ROUNDS * 99 / 100],
        times[ROUNDS - 1]
    );
}

/// Disabling on one side (CLI, or the admin API on A) ends the user's credentials on B
/// within the bound; logins are refused until `enable`.
async fn disable_and_enable(
    http: &reqwest::Client,
    a: &Server,
    b: &Server,
    cwd: &Path,
    storage: &[&str],
) {
    // The CLI, while both run.
    let cookie = form_login(http, a, "bob").await;
    let token = access_token(http, b, "bob").await;
    for cred in [Cred::Cookie(&cookie), Cred::Bearer(&token)] {
        let (status, _, body) = get_with(http, b, "/protected", cred).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let mut disable = vec!["user", "disable", "bob"];
    disable.extend(storage);
    let (code, out, err) = cs(cwd, &disable, "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("disabled user bob"), "{out}");
    refused_within_bound(http, b, Cred::Cookie(&cookie), "user disable, cookie").await;
    refused_within_bound(http, b, Cred::Bearer(&token), "user disable, token").await;
    for s in [a, b] {
        let r = token_request(http, s, "bob", PW).await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "bob's login on {}",
            s.base
        );
    }
    let mut list = vec!["user", "list"];
    list.extend(storage);
    let (_, out, _) = cs(cwd, &list, "");
    let bob = out
        .lines()
        .find(|l| l.contains(" bob "))
        .unwrap_or_default();
    assert!(bob.ends_with("disabled"), "{out}");

    // The admin API on A; carol's token on B.
    let admin = access_token(http, a, "admin").await;
    let carol = access_token(http, b, "carol").await;
    let (status, _, _) = get_with(http, b, "/protected", Cred::Bearer(&carol)).await;
    assert_eq!(status, StatusCode::OK);
    let post =
        |s: &Server, path: &str, bearer: &str| http.post(s.url(path)).bearer_auth(bearer).send();
    let r = post(a, "/api/users/carol/disable", &admin).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"username": "carol", "disabled": true}));
    refused_within_bound(http, b, Cred::Bearer(&carol), "admin API disable").await;
    // Only admins; not one's own account; unknown users are 404.
    let r = post(b, "/api/users/bob/enable", &carol).await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "carol's token is revoked"
    );
    let r = post(b, "/api/users/admin/disable", &admin).await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = post(b, "/api/users/nobody/disable", &admin).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let users: Value = http
        .get(b.url("/api/users"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let disabled: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["disabled"] == true)
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(disabled, ["bob", "carol"]);

    // Enabled again (bob by the API on B, carol by the CLI): they log in.
    let r = post(b, "/api/users/bob/enable", &admin).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut enable = vec!["user", "enable", "carol"];
    enable.extend(storage);
    let (code, out, err) = cs(cwd, &enable, "");
    assert_eq!(code, 0, "{out}{err}");
    for (s, name) in [(a, "bob"), (b, "carol")] {
        let r = token_request(http, s, name, PW).await;
        assert_eq!(r.status(), StatusCode::OK, "{name}");
    }
}

/// Two instances on `storage` (B on `b_storage`: the same stores, named differently),
/// started at once; users alice, bob, carol, dave, erin and an admin.
fn two_instances(cwd: &Path, storage: &[&str], b_storage: &[&str], key: &str) -> (Server, Server) {
    let env = [("SECRET_KEY", key)];
    let a = Server::spawn(cwd, storage, &env);
    let b = Server::spawn(cwd, b_storage, &env);
    let (a, b) = (a.ready(), b.ready());
    add_user(cwd, storage, "alice", "user");
    add_user(cwd, storage, "bob", "user");
    add_user(cwd, storage, "carol", "user");
    add_user(cwd, storage, "admin", "admin");
    add_user(cwd, storage, "dave", "user");
    add_user(cwd, storage, "erin", "user");
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sessions_throttle_as_one_and_revocations_reach_the_other_instance_at_once() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let Some(redis) = ChildRedis::start(&[]) else {
        return;
    };
    // B talks to Redis as its own ACL user, so a test can refuse it SUBSCRIBE alone.
    let http = client();
    let admin = redis::Client::open(redis.url(None)).unwrap();
    let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
    let acl = |args: &[&str]| {
        let mut cmd = redis::cmd("ACL");
        cmd.arg("SETUSER").arg("instance-b").arg(args);
        cmd
    };
    let _: () = acl(&["on", ">b-password", "~*", "&*", "+@all"])
        .query_async(&mut admin)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let url_a = redis.url(None);
    let url_b = url_a.replace("redis://", "redis://instance-b:b-password@");
    let storage = ["--database-url", &db.url, "--session-store", &url_a];
    let b_storage = ["--database-url", &db.url, "--session-store", &url_b];
    let (a, b) = two_instances(cwd, &storage, &b_storage, &secret_key());
    for s in [&a, &b] {
        wait_cache(&http, s, "subscribed").await;
    }

    // Throttling: alternated wrong passwords, then the right one, refused on both.
    for attempt in 0..5_u32 {
        let s = if attempt.is_multiple_of(2) { &a } else { &b };
        let r = token_request(&http, s, "dave", "not dave's password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    for s in [&b, &a] {
        let r = token_request(&http, s, "dave", PW).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{}", s.base);
        assert!(r.headers().contains_key("retry-after"));
    }
    // 50 concurrent wrong guesses for erin over A and B: at most 5 are evaluated.
    let before = metric(&http, &a, "countersign_password_verifications_total").await
        + metric(&http, &b, "countersign_password_verifications_total").await;
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..50_u32 {
        let url = if i.is_multiple_of(2) {
            a.url("")
        } else {
            b.url("")
        };
        let http = http.clone();
        burst.spawn(async move {
            http.post(format!("{url}/api/token"))
                .json(&json!({"username": "erin", "password": format!("guess {i}")}))
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let (mut invalid, mut throttled) = (0, 0);
    while let Some(status) = burst.join_next().await {
        match status.unwrap() {
            StatusCode::UNAUTHORIZED => invalid += 1,
            StatusCode::TOO_MANY_REQUESTS => throttled += 1,
            other => panic!("a guess got {other}"),
        }
    }
    let after = metric(&http, &a, "countersign_password_verifications_total").await
        + metric(&http, &b, "countersign_password_verifications_total").await;
    eprintln!(
        "50 concurrent wrong guesses over two instances: {invalid} evaluated (401), \
         {throttled} refused (429), {} argon2 checks",
        after - before
    );
    assert_eq!((invalid, throttled), (5, 45));
    assert!(after - before <= 5.0, "{} checks", after - before);
    let r = token_request(&http, &a, "erin", PW).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "no oracle");

    // Revocations: 200 in a row, each refused on B within the bound.
    rounds(&http, &a, &b, "Redis").await;

    // B's subscription killed and held down (its ACL user may no longer SUBSCRIBE): B
    // says so, reads the store for every request, and never accepts what A revoked.
    let _: () = acl(&["-subscribe"]).query_async(&mut admin).await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .arg("USER")
        .arg("instance-b")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(killed, 1, "B's subscription, and only it");
    wait_cache(&http, &b, "bypassed").await;
    assert_eq!(metric(&http, &b, "countersign_cache_bypassed").await, 1.0);
    assert_eq!(metric(&http, &a, "countersign_cache_bypassed").await, 0.0);
    let (status, body) = readyz(&http, &b).await;
    assert_eq!(status, StatusCode::OK, "bypassed is still ready: {body}");
    for i in 0..4 {
        let cookie = form_login(&http, &a, "alice").await;
        let (status, _, _) = get_with(&http, &b, "/protected", Cred::Cookie(&cookie)).await;
        assert_eq!(status, StatusCode::OK);
        logout(&http, &a, &cookie).await;
        // No message can reach B: only reading the store explains an immediate refusal.
        let (status, _, body) = get_with(&http, &b, "/protected", Cred::Cookie(&cookie)).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "bypassed round {i}: {body}"
        );
    }
    // Allowed again: B subscribes by itself.
    let _: () = acl(&["+subscribe"]).query_async(&mut admin).await.unwrap();
    wait_cache(&http, &b, "subscribed").await;
    assert_eq!(metric(&http, &b, "countersign_cache_bypassed").await, 0.0);
    for i in 0..10 {
        round(&http, &a, &b, i).await;
    }

    disable_and_enable(&http, &a, &b, cwd, &storage).await;

    let (_, log_b) = b.stop();
    assert!(
        log_b.contains("invalidation subscription was lost"),
        "the loss is logged:\n{log_b}"
    );
    a.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_revocations_reach_the_other_instance_at_once() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let http = client();
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    // B's connections carry their own application_name, so its LISTEN backend can be
    // found.
    let sep = if db.url.contains('?') { '&' } else { '?' };
    let url_b = format!("{}{sep}application_name=countersign-b", db.url);
    let storage = ["--database-url", db.url.as_str()];
    let b_storage = ["--database-url", url_b.as_str()];
    let (a, b) = two_instances(cwd, &storage, &b_storage, &secret_key());
    for s in [&a, &b] {
        wait_cache(&http, s, "subscribed").await;
    }

    rounds(&http, &a, &b, "PostgreSQL").await;

    // B's LISTEN backend terminated: never a stale yes while it is gone, subscribed
    // again by itself.
    let admin =
        countersign_sql::PgStore::connect(&db.url, &countersign_sql::PoolOptions::default())
            .await
            .unwrap();
    let killed: Vec<bool> = countersign_sql::sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'countersign-b' AND query LIKE 'LISTEN %'",
    )
    .fetch_all(admin.pool())
    .await
    .unwrap();
    assert_eq!(killed, vec![true], "B's listening backend, and only it");
    for i in 0..10 {
        round(&http, &a, &b, i).await;
    }
    wait_cache(&http, &b, "subscribed").await;
    admin.close().await;

    disable_and_enable(&http, &a, &b, cwd, &storage).await;

    let (_, log_b) = b.stop();
    assert!(
        log_b.contains("invalidation subscription was lost"),
        "the loss is logged:\n{log_b}"
    );
    a.stop();
}

#[tokio::test]
async fn a_single_sqlite_server_keeps_its_local_cache() {
    let dir = tempfile::tempdir().unwrap();
    let key = secret_key();
    let s = Server::start(dir.path(), &[], &[("SECRET_KEY", key.as_str())]);
    let http = client();
    let (status, body) = readyz(&http, &s).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["cache"], "local", "{body}");
    s.stop();
}
