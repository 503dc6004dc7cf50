//! The server's own cost of a protected request, in process: the real router (every layer:
//! request ids, tracing, metrics with the Prometheus recorder installed, security headers)
//! driven with `tower::ServiceExt::oneshot`, no sockets and no load generator, so the
//! figures do not move with what else shares the machine's cores.
//!
//! Measured in one run: the plain route (`GET /healthz`, no auth: the baseline), `GET
//! /protected` with a bearer token, and with a session cookie (memory store, and SQLite in a
//! temporary directory), at the production defaults (1 s hot-path cache, real clock), and
//! forward authentication's `GET /auth/request` with that session cookie, asked by a
//! trusted proxy about `https://app.example.test/static/index.html`. After
//! criterion's groups, an interleaved pass prints each as a ratio to the plain route: 25
//! rounds in which every contender serves 2 000 requests in turn, medians kept.
//!
//! `cargo bench -p countersign-server`
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, header};
use countersign::clock::SystemClock;
use countersign::keys::{KeyRing, SecretKey};
use countersign::memory::MemoryStore;
use countersign::password::{HashParams, Password};
use countersign::store::{EphemeralStore, UserStore};
use countersign::user::Role;
use countersign_server::server::{App, router, telemetry};
use countersign_server::settings::ServeConfig;
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt as _;

/// The allocator of the `countersign` binary, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Contender {
    name: &'static str,
    router: Router,
    headers: Vec<(header::HeaderName, String)>,
    path: &'static str,
}

/// The proxy's address: forward authentication answers only a trusted one.
const PROXY: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40_000);

impl Contender {
    fn request(&self) -> Request<Body> {
        let mut r = Request::get(self.path).extension(ConnectInfo(PROXY));
        for (name, value) in &self.headers {
            r = r.header(name, value);
        }
        r.body(Body::empty()).unwrap()
    }

    async fn call(&self) {
        let response = self.router.clone().oneshot(self.request()).await.unwrap();
        assert!(
            response.status().is_success(),
            "{} answered {}",
            self.name,
            response.status()
        );
        black_box(
            axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap(),
        );
    }
}

async fn app(
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn EphemeralStore>,
    metrics: &metrics_exporter_prometheus::PrometheusHandle,
) -> (Router, String, String) {
    let config = ServeConfig {
        // Cheap hashing: only the user's creation hashes here.
        hash_params: HashParams {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        },
        trusted_proxies: "127.0.0.1/32".parse().unwrap(),
        ..ServeConfig::default()
    };
    let ring = KeyRing::single(SecretKey::generate(32).unwrap().0);
    let app = App::new(
        &config,
        ring,
        users,
        sessions,
        Arc::new(SystemClock),
        Some(metrics.clone()),
    )
    .unwrap();
    let user = app
        .engine()
        .create_user(
            "bench",
            Password::new("a long bench passphrase"),
            Role::user(),
        )
        .await
        .unwrap();
    let token = app.engine().issue_tokens(&user).await.unwrap().access_token;
    let (cookie, _) = app
        .engine()
        .start_session(&user, "bench", "127.0.0.1")
        .await
        .unwrap();
    let cookie = format!("{}={}", app.auth.cookies.session_name(), cookie.as_str());
    (router(app), token, cookie)
}

fn routes(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let metrics = telemetry::prometheus_builder()
        .unwrap()
        .install_recorder()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let contenders = rt.block_on(async {
        let memory = Arc::new(MemoryStore::new());
        let (mem_router, token, cookie) = app(memory.clone(), memory, &metrics).await;
        let sqlite = countersign_sql::SqlStore::open_sqlite_in(
            dir.path(),
            &countersign_sql::PoolOptions::default(),
        )
        .await
        .unwrap();
        sqlite.migrate().await.unwrap();
        let sqlite = Arc::new(sqlite);
        let (sql_router, _, sql_cookie) = app(sqlite.clone(), sqlite, &metrics).await;
        vec![
            Contender {
                name: "plain GET /healthz",
                router: mem_router.clone(),
                headers: Vec::new(),
                path: "/healthz",
            },
            Contender {
                name: "bearer GET /protected",
                router: mem_router.clone(),
                headers: vec![(header::AUTHORIZATION, format!("Bearer {token}"))],
                path: "/protected",
            },
            Contender {
                name: "session GET /protected (memory)",
                router: mem_router.clone(),
                headers: vec![(header::COOKIE, cookie.clone())],
                path: "/protected",
            },
            Contender {
                name: "forward GET /auth/request",
                router: mem_router,
                headers: vec![
                    (header::COOKIE, cookie),
                    (
                        header::HeaderName::from_static("x-original-url"),
                        "https://app.example.test/static/index.html".to_owned(),
                    ),
                    (
                        header::HeaderName::from_static("x-original-method"),
                        "GET".to_owned(),
                    ),
                ],
                path: "/auth/request",
            },
            Contender {
                name: "session GET /protected (SQLite)",
                router: sql_router,
                headers: vec![(header::COOKIE, sql_cookie)],
                path: "/protected",
            },
        ]
    });

    let mut group = c.benchmark_group("routes");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for contender in &contenders {
        group.bench_function(contender.name, |b| {
            b.iter(|| rt.block_on(contender.call()));
        });
    }
    group.finish();

    // Interleaved: every contender in turn, 25 rounds, medians.
    const ROUNDS: usize = 25;
    const PER_ROUND: u32 = 2_000;
    let mut per_round: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    for _ in 0..ROUNDS {
        for (i, contender) in contenders.iter().enumerate() {
            let start = Instant::now();
            rt.block_on(async {
                for _ in 0..PER_ROUND {
                    contender.call().await;
                }
            });
            per_round[i].push(start.elapsed().as_nanos() as f64 / f64::from(PER_ROUND));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratios: Vec<f64> = (0..contenders.len())
        .map(|i| {
            median(
                (0..ROUNDS)
                    .map(|r| per_round[i][r] / per_round[0][r])
                    .collect(),
            )
        })
        .collect();
    println!(
        "\nin-process cost per request (interleaved, median of {ROUNDS} rounds of {PER_ROUND}):"
    );
    println!(
        "{:<34} {:>10} {:>12} {:>14}",
        "route", "ns/req", "× plain", "req/s/core"
    );
    for (i, contender) in contenders.iter().enumerate() {
        let ns = median(per_round[i].clone());
        println!(
            "{:<34} {:>10.0} {:>11.2}× {:>14.0}",
            contender.name,
            ns,
            ratios[i],
            1e9 / ns
        );
    }
    println!(
        "(protected at the same throughput as plain would be 1.00×; its requests/s share is 1/ratio)"
    );
}

criterion_group!(benches, routes);
criterion_main!(benches);
