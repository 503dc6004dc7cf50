//! The storage subcommands in-process (`user …`, `session …`, `migrate`) against SQLite in
//! a temporary data directory, with the exit statuses of `docs/cli.md`: 0 success, 1 a
//! negative answer (no such user or session, a name taken), 2 bad input.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use countersign::auth::{Auth, AuthConfig};
use countersign::clock::{ManualClock, UnixTime};
use countersign::keys::{KeyRing, SecretKey};
use countersign::password::{HashParams, Hasher, HashingPool, Password};
use countersign_server::settings::StorageConfig;
use countersign_server::storage::Stores;
use countersign_server::{Context, report_error, run};

const PW: &str = "correct horse battery staple";

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Run `countersign ARGS` in-process with `stdin` and the environment `env`.
fn cs(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Out {
    let vars: BTreeMap<&str, &str> = env.iter().copied().collect();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut input = stdin.as_bytes();
    let clock = ManualClock::new(UnixTime(1_800_000_000));
    let mut ctx = Context {
        clock: &clock,
        env: &vars,
        stdin: &mut input,
        stdout: &mut stdout,
        stderr: &mut stderr,
    };
    let argv = std::iter::once("countersign").chain(args.iter().copied());
    let code = match run(argv, &mut ctx) {
        Ok(code) => code,
        Err(err) => report_error(&err, ctx.stderr),
    };
    let code = (0..=255u8)
        .find(|c| ExitCode::from(*c) == code)
        .map(i32::from)
        .unwrap();
    let out = Out {
        code,
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    };
    assert!(
        !out.stdout.contains(PW) && !out.stderr.contains(PW),
        "{out:?}"
    );
    out
}

fn in_dir(dir: &Path, args: &[&str], stdin: &str) -> Out {
    let mut all = args.to_vec();
    all.extend(["--data-dir", dir.to_str().unwrap()]);
    cs(&all, stdin, &[])
}

/// An engine over the same database, to make and look at sessions as the server would.
async fn engine(dir: &Path) -> (Auth, Stores) {
    let stores = Stores::open(&StorageConfig {
        data_dir: dir.to_owned(),
        database_url: None,
        ..StorageConfig::default()
    })
    .await
    .unwrap();
    let pool = HashingPool::new(
        Hasher::new(HashParams {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        })
        .unwrap(),
        1,
        4,
    )
    .unwrap();
    let auth = Auth::new(
        KeyRing::single(SecretKey::generate(32).unwrap().0),
        AuthConfig {
            cache_ttl: Duration::ZERO,
            ..AuthConfig::default()
        },
        stores.users(),
        stores.sessions(),
        pool,
        Arc::new(ManualClock::new(UnixTime(1_800_000_000))),
    );
    (auth, stores)
}

/// Log `name` in (through the engine, as `POST /login` does) and give the session's id.
async fn session_of(dir: &Path, name: &str, password: &str) -> String {
    let (auth, stores) = engine(dir).await;
    let user = auth
        .login(name, Password::new(password), "127.0.0.1")
        .await
        .unwrap();
    let (_, record) = auth
        .start_session(&user, "curl/8", "127.0.0.1")
        .await
        .unwrap();
    stores.close().await;
    record.key.to_string()
}

async fn live_sessions(dir: &Path, name: &str) -> usize {
    let (auth, stores) = engine(dir).await;
    let user = auth.user_by_name(name).await.unwrap().unwrap();
    let n = auth.list_sessions(user.id).await.unwrap().len();
    stores.close().await;
    n
}

#[test]
fn user_add_list_set_role_remove() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = in_dir(
        d,
        &[
            "user",
            "add",
            "alice",
            "--role",
            "admin",
            "--password-stdin",
        ],
        &format!("{PW}\n"),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("created user alice") && out.stdout.contains("role admin"),
        "{out:?}"
    );

    let out = in_dir(d, &["user", "add", "alice", "--password-stdin"], PW);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("already exists"), "{out:?}");
    let out = in_dir(d, &["user", "add", "<script>", "--password-stdin"], PW);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("username"), "{out:?}");
    let out = in_dir(d, &["user", "add", "bob", "--password-stdin"], "short\n");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("at least 8"), "{out:?}");
    let out = in_dir(
        d,
        &["user", "add", "bob", "--password-stdin"],
        "password123\n",
    );
    assert!(out.code == 2 && out.stderr.contains("common"), "{out:?}");
    let out = in_dir(d, &["user", "add", "bob", "--password-stdin"], "");
    assert!(
        out.code == 2 && out.stderr.contains("no password"),
        "{out:?}"
    );
    let out = in_dir(d, &["user", "add", "bob"], PW);
    assert!(
        out.code == 2 && out.stderr.contains("--password-stdin"),
        "{out:?}"
    );
    let out = in_dir(
        d,
        &["user", "add", "bob", "--role", "Boss", "--password-stdin"],
        PW,
    );
    assert!(out.code == 2 && out.stderr.contains("role"), "{out:?}");
    let out = in_dir(d, &["user", "add", "bob", "--password-stdin"], PW);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("role user"));

    let out = in_dir(d, &["user", "list"], "");
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("USERNAME"),
        "{out:?}"
    );
    assert!(
        lines[1].contains("alice") && lines[1].contains("admin"),
        "{out:?}"
    );
    assert!(
        lines[2].contains("bob") && lines[2].contains("user"),
        "{out:?}"
    );

    let out = in_dir(d, &["user", "set-role", "bob", "editor"], "");
    assert_eq!(out.code, 0, "{out:?}");
    let out = in_dir(d, &["user", "set-role", "nobody", "editor"], "");
    assert!(
        out.code == 1 && out.stderr.contains("no such user"),
        "{out:?}"
    );
    let out = in_dir(d, &["user", "set-role", "bob", "NOT A ROLE"], "");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(in_dir(d, &["user", "list"], "").stdout.contains("editor"));

    let out = in_dir(d, &["user", "remove", "bob"], "");
    assert_eq!(out.code, 0, "{out:?}");
    let out = in_dir(d, &["user", "remove", "bob"], "");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!in_dir(d, &["user", "list"], "").stdout.contains("bob"));
}

/// Run a future on a runtime of its own (the commands under test start theirs).
fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn account_changes_end_the_users_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        in_dir(d, &["user", "add", "alice", "--password-stdin"], PW).code,
        0
    );

    block(session_of(d, "alice", PW));
    assert_eq!(block(live_sessions(d, "alice")), 1);
    let new_pw = "another long passphrase";
    let out = in_dir(
        d,
        &["user", "passwd", "alice", "--password-stdin"],
        &format!("{new_pw}\n"),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(block(live_sessions(d, "alice")), 0, "passwd ends sessions");
    // The new password works, and the old one does not.
    block(session_of(d, "alice", new_pw));
    block(async {
        let (auth, stores) = engine(d).await;
        assert!(auth.login("alice", Password::new(PW), "x").await.is_err());
        stores.close().await;
    });

    assert_eq!(
        in_dir(d, &["user", "set-role", "alice", "admin"], "").code,
        0
    );
    assert_eq!(
        block(live_sessions(d, "alice")),
        0,
        "set-role ends sessions"
    );

    block(session_of(d, "alice", new_pw));
    let out = in_dir(d, &["user", "passwd", "nobody", "--password-stdin"], new_pw);
    assert_eq!(out.code, 1, "{out:?}");
    let out = in_dir(d, &["user", "remove", "alice"], "");
    assert_eq!(out.code, 0, "{out:?}");
    block(async {
        let (auth, stores) = engine(d).await;
        assert!(auth.user_by_name("alice").await.unwrap().is_none());
        // Its sessions went with it.
        assert!(
            auth.list_sessions(countersign::user::UserId(1))
                .await
                .unwrap()
                .is_empty()
        );
        stores.close().await;
    });
}

#[test]
fn session_list_revoke_revoke_all() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        in_dir(d, &["user", "add", "alice", "--password-stdin"], PW).code,
        0
    );
    let first = block(session_of(d, "alice", PW));
    let second = block(session_of(d, "alice", PW));

    let out = in_dir(d, &["session", "list", "alice"], "");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("ID"), "{out:?}");
    assert!(
        out.stdout.contains(&first) && out.stdout.contains(&second),
        "{out:?}"
    );
    assert!(out.stdout.contains("curl/8") && out.stdout.contains("127.0.0.1"));
    let out = in_dir(d, &["session", "list", "nobody"], "");
    assert_eq!(out.code, 1, "{out:?}");

    let out = in_dir(d, &["session", "revoke", &first], "");
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(block(live_sessions(d, "alice")), 1);
    let out = in_dir(d, &["session", "revoke", &first], "");
    assert!(
        out.code == 1 && out.stderr.contains("no such session"),
        "{out:?}"
    );
    let out = in_dir(d, &["session", "revoke", "not-a-session"], "");
    assert_eq!(out.code, 2, "{out:?}");

    block(session_of(d, "alice", PW));
    let out = in_dir(d, &["session", "revoke-all", "alice"], "");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("ended 2 sessions"), "{out:?}");
    assert_eq!(block(live_sessions(d, "alice")), 0);
}

#[test]
fn migrate_and_the_data_dir_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("state");
    let out = in_dir(&d, &["migrate"], "");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("up to date"), "{out:?}");
    assert!(d.join("countersign.db").exists());
    // COUNTERSIGN_DATA_DIR instead of the flag.
    let out = cs(
        &["user", "add", "carol", "--password-stdin"],
        PW,
        &[("COUNTERSIGN_DATA_DIR", d.to_str().unwrap())],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(in_dir(&d, &["user", "list"], "").stdout.contains("carol"));
    // A database URL wins over the data directory.
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("other.db").display()
    );
    let out = cs(
        &[
            "user",
            "list",
            "--data-dir",
            d.to_str().unwrap(),
            "--database-url",
            &url,
        ],
        "",
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("carol"), "{out:?}");
    let out = cs(&["migrate", "--database-url", "mysql://nope"], "", &[]);
    assert_eq!(out.code, 2, "{out:?}");
}
