//! The real binary: port 0 and the log line that names it, generated passwords printed
//! once, plain-HTTP cookies by default, configuration errors, SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStderr, Command};
use tokio::time::timeout;

use crate::common::PW;

const LIMIT: Duration = Duration::from_secs(120);

fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_buggy-race"));
    cmd.env_remove("SECRET_KEY")
        .env_remove("BUGGY_ALICE_PASSWORD")
        .env_remove("BUGGY_BOB_PASSWORD")
        .env_remove("BUGGY_ADMIN_PASSWORD")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Read stderr lines until one contains `needle`; every line read so far.
async fn read_until(
    lines: &mut tokio::io::Lines<BufReader<ChildStderr>>,
    needle: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    timeout(LIMIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains(needle);
            seen.push(line);
            if done {
                return;
            }
        }
        panic!("stderr ended before {needle:?}: {seen:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in time"));
    seen
}

/// One HTTP/1.1 request; the status code and the raw head.
async fn request(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    timeout(LIMIT, stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let head = response.split("\r\n\r\n").next().unwrap().to_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head)
}

async fn terminate(child: &mut Child) {
    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn serves_on_port_zero_and_stops_on_sigterm() {
    let mut child = command()
        .args(["--addr", "127.0.0.1:0"])
        .env("BUGGY_ALICE_PASSWORD", PW)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let seen = read_until(&mut lines, "listening on http://").await;
    let all = seen.join("\n");
    // The key and cookie warnings, and the generated passwords, once each; alice's was set.
    assert!(all.contains("SECRET_KEY is not set"), "{all}");
    assert!(all.contains("cookies are not Secure"), "{all}");
    assert_eq!(
        all.matches("generated password for bob: ").count(),
        1,
        "{all}"
    );
    assert_eq!(
        all.matches("generated password for admin: ").count(),
        1,
        "{all}"
    );
    assert!(!all.contains("generated password for alice"), "{all}");
    assert!(!all.contains(PW), "{all}");
    let last = seen.last().unwrap();
    let addr = last
        .split("listening on http://")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );

    let (status, head) = request(&addr, "GET", "/buggy").await;
    assert_eq!(status, 303, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("location: /login"),
        "{head}"
    );
    let (status, head) = request(&addr, "GET", "/login").await;
    assert_eq!(status, 200, "{head}");
    // Plain HTTP by default: no Secure flag, no __Host- prefix.
    assert!(head.contains("set-cookie: countersign-csrf="), "{head}");
    assert!(!head.contains("Secure"), "{head}");

    terminate(&mut child).await;
    read_until(&mut lines, "shutting down").await;
    let status = timeout(LIMIT, child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn configuration_errors_exit_2() {
    for (var, value, message) in [
        ("SECRET_KEY", "secret", "SECRET_KEY is refused"),
        (
            "SECRET_KEY",
            "short but not a placeholder",
            "SECRET_KEY is refused",
        ),
        (
            "BUGGY_BOB_PASSWORD",
            "short",
            "BUGGY_BOB_PASSWORD is refused",
        ),
        (
            "BUGGY_ADMIN_PASSWORD",
            "password123",
            "BUGGY_ADMIN_PASSWORD is refused",
        ),
    ] {
        let output = timeout(LIMIT, command().env(var, value).output())
            .await
            .unwrap()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(message), "{var}={value}: {stderr}");
        assert!(!stderr.contains("listening on"), "{stderr}");
    }
    let output = timeout(LIMIT, command().args(["--admin", "alice"]).output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = timeout(LIMIT, command().args(["--addr", "nowhere"]).output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
