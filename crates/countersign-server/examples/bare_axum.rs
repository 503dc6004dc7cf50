//! The HTTP ceiling of the machine, for `bench/http.sh`: axum serving one small JSON route
//! with no layer, no state and no logging. countersign's own plain route is compared with
//! it, so the benchmark shows what the server's envelope (request ids, access log, metrics,
//! security headers, timeout) costs, and how far any server could get here.
//!
//! `cargo run --release -p countersign-server --example bare_axum` prints
//! `listening on http://ADDR` (a free loopback port) and serves `GET /healthz`.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new().route("/healthz", get(healthz));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
