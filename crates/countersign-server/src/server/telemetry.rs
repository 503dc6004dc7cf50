//! Logging and the metrics recorder of the `serve` process.
//!
//! Both are process-wide by nature (the `tracing` dispatcher and the `metrics` recorder
//! are what libraries, `countersign-axum` among them, write to), so they are installed
//! once, by `serve`, and nowhere else; the router only receives the handle it renders
//! `/metrics` from. In-process tests install neither, or a recorder of their own.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use super::batch_writer::{FlushGuard, batch_writer};
use crate::settings::LogFormat;

/// The log filter used when `COUNTERSIGN_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info";

/// Latency buckets, seconds: from a cached bearer check to a queued argon2 hash.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Install the global log subscriber, writing to stderr in `format`. `filter` is an
/// `EnvFilter` directive (`info`, `countersign=debug,info`, …); `None` means
/// [`DEFAULT_FILTER`].
///
/// Lines are formatted on the thread that logs and written in batches by a thread of
/// their own ([`batch_writer`](super::batch_writer)): the access log costs a request the
/// formatting of its line, not a system call. Keep the returned guard until the process
/// ends; dropping it writes what is left.
///
/// # Errors
/// A filter that does not parse, a subscriber already installed, or no thread for the
/// writer.
pub fn init_logging(format: LogFormat, filter: Option<&str>) -> anyhow::Result<FlushGuard> {
    let filter = EnvFilter::try_new(filter.unwrap_or(DEFAULT_FILTER))
        .map_err(|e| anyhow::anyhow!("COUNTERSIGN_LOG is not a valid log filter: {e}"))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = batch_writer(std::io::stderr())
        .map_err(|e| anyhow::anyhow!("cannot start the log writer: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.with_ansi(ansi).compact().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    Ok(guard)
}

/// Install the global Prometheus recorder and return the handle `/metrics` renders.
///
/// # Errors
/// A recorder already installed.
pub fn init_metrics() -> anyhow::Result<PrometheusHandle> {
    Ok(prometheus_builder()?.install_recorder()?)
}

/// The recorder's settings: request latency as a histogram with [`LATENCY_BUCKETS`].
///
/// # Errors
/// Never for these constant buckets.
pub fn prometheus_builder() -> anyhow::Result<PrometheusBuilder> {
    Ok(PrometheusBuilder::new().set_buckets_for_metric(
        Matcher::Full("countersign_http_request_duration_seconds".to_owned()),
        LATENCY_BUCKETS,
    )?)
}
