//! Key rotation across instances without a restart and without refusing anyone: each
//! instance reads `SECRET_KEY_FILE` and `SECRET_KEY_FALLBACKS_FILE` again on SIGHUP.
//! The procedure (docs/operations.md, "Rotating keys"): the new key as a fallback
//! everywhere first, then current everywhere (the old one a fallback), and only after the
//! longest lifetime the old one removed. At every step, whatever either instance issued
//! is accepted by both.

use std::path::Path;

use reqwest::StatusCode;

use super::support::{
    Cred, Server, access_token, add_user, client, form_login, get_with, secret_key,
};

/// One instance's key files (as on its own machine).
struct Keys<'a> {
    current: &'a Path,
    fallbacks: &'a Path,
}

impl Keys<'_> {
    fn write(&self, current: &str, fallbacks: &[&str]) {
        std::fs::write(self.current, format!("{current}\n")).unwrap();
        std::fs::write(self.fallbacks, fallbacks.join("\n")).unwrap();
    }
}

/// SIGHUP each server in turn, waiting for each to report the new ring.
fn reload(servers: &mut [&mut Server]) {
    for s in servers.iter_mut() {
        s.signal("HUP");
        s.wait_for("key ring reloaded");
    }
}

/// (a cookie, a bearer token) issued by `s` for alice.
async fn credentials(http: &reqwest::Client, s: &Server) -> (String, String) {
    (
        form_login(http, s, "alice").await,
        access_token(http, s, "alice").await,
    )
}

/// Every credential is accepted (or, with `ok` false, refused with 401) by every server.
async fn check(http: &reqwest::Client, servers: &[&Server], creds: &[&(String, String)], ok: bool) {
    for s in servers {
        for (cookie, token) in creds {
            for cred in [Cred::Cookie(cookie), Cred::Bearer(token)] {
                let (status, _, body) = get_with(http, s, "/protected", cred).await;
                let want = if ok {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                };
                assert_eq!(status, want, "{cred:?} on {}: {body}", s.base);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_across_two_instances_by_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let data = cwd.join("data");
    let data_arg = data.to_str().unwrap();
    let paths: Vec<_> = ["a.key", "a.fallbacks", "b.key", "b.fallbacks"]
        .iter()
        .map(|f| cwd.join(f))
        .collect();
    let a_keys = Keys {
        current: &paths[0],
        fallbacks: &paths[1],
    };
    let b_keys = Keys {
        current: &paths[2],
        fallbacks: &paths[3],
    };
    let (old, new) = (secret_key(), secret_key());
    a_keys.write(&old, &[]);
    b_keys.write(&old, &[]);
    let path = |i: usize| paths[i].to_str().unwrap();
    let env_a = [
        ("SECRET_KEY_FILE", path(0)),
        ("SECRET_KEY_FALLBACKS_FILE", path(1)),
    ];
    let env_b = [
        ("SECRET_KEY_FILE", path(2)),
        ("SECRET_KEY_FALLBACKS_FILE", path(3)),
    ];
    let args = ["--data-dir", data_arg, "--cache-ttl", "0"];
    let mut a = Server::start(cwd, &args, &env_a);
    let mut b = Server::start(cwd, &args, &env_b);
    add_user(cwd, &["--data-dir", data_arg], "alice", "user");
    let http = client();

    let before = credentials(&http, &a).await;
    check(&http, &[&a, &b], &[&before], true).await;

    // 1. The new key as a fallback everywhere: nothing signs with it yet.
    a_keys.write(&old, &[&new]);
    b_keys.write(&old, &[&new]);
    reload(&mut [&mut a, &mut b]);
    check(&http, &[&a, &b], &[&before], true).await;

    // 2. Current on A only (B not yet reloaded): A's new credentials work on B, which
    // already knows the new key as a fallback; the old ones still work on A.
    a_keys.write(&new, &[&old]);
    reload(&mut [&mut a]);
    let from_a = credentials(&http, &a).await;
    let from_b = credentials(&http, &b).await;
    check(&http, &[&a, &b], &[&before, &from_a, &from_b], true).await;
    b_keys.write(&new, &[&old]);
    reload(&mut [&mut b]);
    let after = credentials(&http, &b).await;
    check(&http, &[&a, &b], &[&before, &from_a, &from_b, &after], true).await;

    // 3. After the longest lifetime, the old key goes: what it signed is refused.
    a_keys.write(&new, &[]);
    b_keys.write(&new, &[]);
    reload(&mut [&mut a, &mut b]);
    check(&http, &[&a, &b], &[&from_a, &after], true).await;
    check(&http, &[&a, &b], &[&before, &from_b], false).await;

    // A refused new file keeps the current ring.
    std::fs::write(a_keys.fallbacks, "changeme").unwrap();
    a.signal("HUP");
    a.wait_for("still using the current ones");
    let (status, _, _) = get_with(&http, &a, "/protected", Cred::Bearer(&after.1)).await;
    assert_eq!(status, StatusCode::OK);

    for s in [a, b] {
        let (status, log) = s.stop();
        assert_eq!(status.code(), Some(0), "{log}");
        assert!(
            !log.contains(&old) && !log.contains(&new),
            "a key reached the log"
        );
    }
}
