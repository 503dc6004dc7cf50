//! `kill -9` during a login load, on SQLite and on PostgreSQL: after a restart, every
//! session whose login response reached the client still works and every account whose
//! registration response reached it exists. A response is only sent after the write it
//! reports has committed, so a crash may lose work in flight but never work answered.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;

use super::support::{
    COOKIE_NAME, Cred, PW, PgDatabase, Server, add_user, client, cs, get_with, poll,
    post_credentials, secret_key, set_cookie,
};

/// What the load saw answered before the kill.
#[derive(Default)]
struct Answered {
    /// `Cookie` header values of sessions made by a login or a registration.
    sessions: Vec<String>,
    /// Accounts registered.
    users: Vec<String>,
}

/// Clients that log in (form) and register (form) in a loop, recording each answered
/// success, until `stop` is set or the server stops answering.
fn load(
    base: &str,
    answered: &Arc<Mutex<Answered>>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..6)
        .map(|worker| {
            let (base, answered, stop) = (base.to_owned(), Arc::clone(answered), Arc::clone(stop));
            tokio::spawn(async move {
                let http = client();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let registering = worker % 2 == 1;
                    let name = if registering {
                        format!("load-{worker}-{n}")
                    } else {
                        "alice".to_owned()
                    };
                    let path = if registering { "/register" } else { "/login" };
                    let Ok(r) = post_credentials(&http, &base, path, &name, PW).await else {
                        return; // killed
                    };
                    if r.status() != StatusCode::SEE_OTHER {
                        continue;
                    }
                    let Some(session) = set_cookie(r.headers(), COOKIE_NAME) else {
                        continue;
                    };
                    let mut a = answered.lock().unwrap();
                    a.sessions.push(format!("{COOKIE_NAME}={session}"));
                    if registering {
                        a.users.push(name);
                    }
                }
            })
        })
        .collect()
}

/// Start, load, `kill -9` once enough has been answered, restart on the same storage,
/// check everything answered is there.
async fn crash_under_load(cwd: &Path, storage: &[&str]) {
    let key = secret_key();
    let env = [("SECRET_KEY", key.as_str())];
    add_user(cwd, storage, "alice", "user");
    let mut args = storage.to_vec();
    args.extend(["--registration", "open"]);
    let s = Server::start(cwd, &args, &env);

    let answered = Arc::new(Mutex::new(Answered::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers = load(&s.base, &answered, &stop);
    poll("the load gets answers", || async {
        let a = answered.lock().unwrap();
        (a.sessions.len() >= 30 && a.users.len() >= 5).then_some(())
    })
    .await;
    // Killed while the workers still have requests in flight.
    let log = tokio::task::spawn_blocking(move || s.kill9())
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let answered = std::mem::take(&mut *answered.lock().unwrap());
    assert!(!answered.users.is_empty(), "{log}");

    let s = Server::start(cwd, &args, &env);
    let http = client();
    for cookie in &answered.sessions {
        let (status, _, body) = get_with(&http, &s, "/protected", Cred::Cookie(cookie)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "a session answered before the kill is gone: {body}"
        );
    }
    let mut list = vec!["user", "list"];
    list.extend(storage);
    let (code, out, err) = cs(cwd, &list, "");
    assert_eq!(code, 0, "{err}");
    let listed: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    for user in answered.users.iter().map(String::as_str).chain(["alice"]) {
        assert!(
            listed.contains(&user),
            "{user} was registered before the kill and is gone:\n{out}"
        );
    }
    let (status, log) = s.stop();
    assert_eq!(status.code(), Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_login_load_on_sqlite_loses_nothing_answered() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crash_under_load(dir.path(), &["--data-dir", data.to_str().unwrap()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_login_load_on_postgres_loses_nothing_answered() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    crash_under_load(dir.path(), &["--database-url", &db.url]).await;
}
