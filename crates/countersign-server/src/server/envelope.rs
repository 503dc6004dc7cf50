//! What every request and response passes through, as one hand-written tower service:
//! a fresh request id, the request span and access log, the request metrics, the request
//! timeout (408), and the security headers.
//!
//! These were four layers (`TraceLayer` and three `from_fn` middlewares). Each of those
//! boxed a future and cloned a boxed service per request, and the metrics call built its
//! label strings and hashed them into the recorder's registry every time; together they
//! cost more than a bearer token check. Here they are one unboxed future, and the metric
//! handles are looked up once per (method, route, status) and kept.
//!
//! The timeout starts a timer only when the route first has to wait: tower-http's
//! `TimeoutLayer` registered one in the runtime's timer wheel for every request (and polled
//! it before the route), which cost a cached bearer check a tenth of its time. The deadline
//! still counts from the request's arrival.
//!
//! Forward authentication's endpoints (`/auth/request`, `/auth/forward`) are asked once for
//! every request a proxy passes on, so their allowed answers are logged at `debug`, not
//! `info` (the proxy's own access log records each request; a refusal or a failure is still
//! logged at `info` or `error`, naming the request id, method and route), and their request
//! span is a `debug` one. The answers of `/auth/request` go to nginx only (it never passes
//! them on: a refusal becomes its own redirect or error page), so they carry
//! `Cache-Control` and the request id but not the headers meant for browsers.
//!
//! Nothing from the request but its method and route pattern is logged or used as a label:
//! no header, cookie, query string or body (they carry credentials), and no raw path in the
//! metrics (unbounded label values).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse as _;
use axum::response::Response;
use metrics::{Counter, Histogram};
use tokio::time::Sleep;
use tower::{Layer, Service};

/// The response (and request) header carrying the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request counter, by method, route and status.
pub const REQUESTS_TOTAL: &str = "countersign_http_requests_total";

/// The request latency histogram, seconds, by method, route and status.
pub const REQUEST_DURATION: &str = "countersign_http_request_duration_seconds";

/// Install with [`axum::Router::layer`] (it runs after routing, so the route pattern is
/// known). Clones share one cache of metric handles.
#[derive(Clone, Debug)]
pub struct EnvelopeLayer {
    shared: Arc<Shared>,
    timeout: Duration,
}

impl EnvelopeLayer {
    /// Requests not answered within `timeout` get 408; a response without a
    /// `Content-Security-Policy` of its own gets `csp`.
    pub fn new(timeout: Duration, csp: HeaderValue) -> Self {
        Self {
            shared: Arc::new(Shared {
                metrics: MetricHandles::default(),
                csp,
            }),
            timeout,
        }
    }
}

/// What every request of one [`EnvelopeLayer`] reads, behind one reference count.
#[derive(Debug)]
struct Shared {
    metrics: MetricHandles,
    /// The `Content-Security-Policy` of a response that sets none.
    csp: HeaderValue,
}

impl<S> Layer<S> for EnvelopeLayer {
    type Service = Envelope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Envelope {
            inner,
            shared: Arc::clone(&self.shared),
            timeout: self.timeout,
        }
    }
}

/// The service of [`EnvelopeLayer`].
#[derive(Clone, Debug)]
pub struct Envelope<S> {
    inner: S,
    shared: Arc<Shared>,
    timeout: Duration,
}

impl<S> Service<Request> for Envelope<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EnvelopeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let start = Instant::now();
        // A client's own `x-request-id` is replaced: it would let anyone write into the logs.
        let id = countersign::random::token_id();
        // Invariant: `token_id` is base64url text, always a valid header value.
        let id = HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("-"));
        request.headers_mut().insert(REQUEST_ID, id.clone());
        let method = MethodLabel::of(request.method());
        let route = request.extensions().get::<MatchedPath>().cloned();
        let kind = RouteKind::of(route.as_ref());
        let span = if kind == RouteKind::Page {
            tracing::info_span!(
                "request",
                id = id.to_str().unwrap_or("-"),
                method = %request.method(),
                path = %request.uri().path(),
            )
        } else {
            tracing::debug_span!(
                "request",
                id = id.to_str().unwrap_or("-"),
                method = %request.method(),
                path = %request.uri().path(),
            )
        };
        let future = {
            let _entered = span.enter();
            tracing::debug!("request started");
            self.inner.call(request)
        };
        EnvelopeFuture {
            future,
            deadline: start + self.timeout,
            timer: None,
            state: Some(Pending {
                start,
                id,
                method,
                kind,
                route,
                span,
                shared: Arc::clone(&self.shared),
            }),
        }
    }
}

/// What the response needs from the request.
struct Pending {
    start: Instant,
    id: HeaderValue,
    method: MethodLabel,
    kind: RouteKind,
    route: Option<MatchedPath>,
    span: tracing::Span,
    shared: Arc<Shared>,
}

pin_project_lite::pin_project! {
    /// The future of [`Envelope`].
    pub struct EnvelopeFuture<F> {
        #[pin]
        future: F,
        deadline: Instant,
        // Made on the first wait only (boxed: a `Sleep` is large and rarely needed).
        timer: Option<Pin<Box<Sleep>>>,
        state: Option<Pending>,
    }
}

impl<F> Future for EnvelopeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = {
            let _entered = this.state.as_ref().map(|s| s.span.enter());
            this.future.poll(cx)
        };
        let mut response = match polled {
            Poll::Ready(Ok(response)) => response,
            Poll::Pending => {
                let deadline = *this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
                ready!(timer.as_mut().poll(cx));
                // The JSON API's error shape (`docs/http.md`), written here: the envelope
                // knows nothing of the handlers it wraps.
                let body = serde_json::json!({
                    "error": "request_timeout",
                    "message": "The request took too long.",
                });
                (StatusCode::REQUEST_TIMEOUT, Json(body)).into_response()
            }
        };
        if let Some(pending) = this.state.take() {
            pending.finish(&mut response);
        }
        Poll::Ready(Ok(response))
    }
}

impl Pending {
    fn finish(self, response: &mut Response) {
        let status = response.status();
        let elapsed = self.start.elapsed();
        let route = self.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        self.shared
            .metrics
            .record(self.method, route, status, elapsed.as_secs_f64());

        let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let code = status.as_u16();
        if self.kind == RouteKind::Page {
            if status.is_server_error() {
                tracing::error!(parent: &self.span, status = code, latency_us, "response failed");
            } else {
                tracing::info!(parent: &self.span, status = code, latency_us, "response");
            }
        } else {
            // The span is a `debug` one: what is logged above that names the request.
            let id = self.id.to_str().unwrap_or("-");
            let method = self.method.0;
            if status.is_server_error() {
                tracing::error!(
                    id,
                    method,
                    path = route,
                    status = code,
                    latency_us,
                    "response failed"
                );
            } else if status.is_success() {
                tracing::debug!(parent: &self.span, status = code, latency_us, "response");
            } else {
                tracing::info!(
                    id,
                    method,
                    path = route,
                    status = code,
                    latency_us,
                    "response"
                );
            }
        }

        let headers = response.headers_mut();
        headers.insert(REQUEST_ID, self.id);
        if self.kind == RouteKind::ProxyOnly {
            headers
                .entry(header::CACHE_CONTROL)
                .or_insert(HeaderValue::from_static("no-store"));
        } else {
            security_headers(headers, &self.shared.csp);
        }
    }
}

/// How a route is logged and which headers its answers get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RouteKind {
    /// Every other route: an `info` span and access log, the browser headers.
    Page,
    /// `/auth/forward`: asked for every proxied request (allowed answers logged at
    /// `debug`); its refusals may reach a browser, so they get the browser headers.
    Forward,
    /// `/auth/request`: as [`Self::Forward`], and read by nginx only: no browser headers.
    ProxyOnly,
}

impl RouteKind {
    fn of(route: Option<&MatchedPath>) -> Self {
        match route.map(MatchedPath::as_str) {
            Some("/auth/request") => Self::ProxyOnly,
            Some("/auth/forward") => Self::Forward,
            _ => Self::Page,
        }
    }
}

/// Headers on every response (but `/auth/request`'s, which get only `Cache-Control`).
///
/// `Cache-Control: no-store` everywhere (auth answers must never sit in a shared cache),
/// except where a handler set its own: the public key set and discovery documents, which
/// verifiers are meant to cache;
/// a content security policy, `csp` (the router's allows nothing but the pages' own inline
/// style, by hash, and form posts to this origin), unless the handler set its own (a login
/// or logout form that sends the browser back to an application names that origin too); no
/// framing, no sniffing, no referrer to others.
fn security_headers(h: &mut HeaderMap, csp: &HeaderValue) {
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert_with(|| csp.clone());
}

/// The method as a metric label: the standard ones by name, anything else as `other`, so
/// that clients cannot grow the label set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct MethodLabel(&'static str);

impl MethodLabel {
    fn of(method: &Method) -> Self {
        Self(match *method {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::DELETE => "DELETE",
            Method::PATCH => "PATCH",
            Method::OPTIONS => "OPTIONS",
            _ => "other",
        })
    }
}

/// The handles of [`REQUESTS_TOTAL`] and [`REQUEST_DURATION`], by (method, status) and then
/// route pattern, made on first use. The set is bounded: methods are folded into eight
/// labels and routes are the router's patterns (or `unmatched`).
#[derive(Debug, Default)]
struct MetricHandles {
    #[allow(clippy::type_complexity)]
    by_key: RwLock<HashMap<(MethodLabel, u16), HashMap<Box<str>, (Counter, Histogram)>>>,
}

impl MetricHandles {
    /// Count one request and record its latency, through the kept handles (made on first
    /// use). The handles are used in place, not cloned: a clone is a shared reference count
    /// that every core would write on every request.
    fn record(&self, method: MethodLabel, route: &str, status: StatusCode, seconds: f64) {
        let key = (method, status.as_u16());
        let record = |(count, latency): &(Counter, Histogram)| {
            count.increment(1);
            latency.record(seconds);
        };
        {
            // A poisoned lock only means another request panicked mid-insert; the map is
            // still usable.
            let map = self.by_key.read().unwrap_or_else(|e| e.into_inner());
            if let Some(handles) = map.get(&key).and_then(|routes| routes.get(route)) {
                return record(handles);
            }
        }
        let labels = [
            ("method", method.0.to_owned()),
            ("route", route.to_owned()),
            ("status", status.as_str().to_owned()),
        ];
        let mut map = self.by_key.write().unwrap_or_else(|e| e.into_inner());
        let handles = map
            .entry(key)
            .or_default()
            .entry(route.into())
            .or_insert_with(|| {
                (
                    metrics::counter!(REQUESTS_TOTAL, &labels),
                    metrics::histogram!(REQUEST_DURATION, &labels),
                )
            });
        record(handles);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    fn app(timeout: Duration) -> Router {
        Router::new()
            .route("/fast", get(|| async { "fast" }))
            .route(
                "/wait",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    "waited"
                }),
            )
            .route(
                "/stuck",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "never"
                }),
            )
            .layer(EnvelopeLayer::new(
                timeout,
                HeaderValue::from_static("default-src 'none'"),
            ))
    }

    async fn get_status(router: Router, path: &str) -> (StatusCode, HeaderMap, String) {
        let r = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = r.into_parts();
        let body = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn a_stuck_request_is_answered_408_with_the_envelope_headers() {
        let started = Instant::now();
        let (status, headers, body) = get_status(app(Duration::from_millis(100)), "/stuck").await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert!(body.contains("\"request_timeout\""), "{body}");
        assert!(headers.contains_key(REQUEST_ID));
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        // Counted from the request's arrival, and not much later.
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn requests_within_the_deadline_are_answered_whether_or_not_they_wait() {
        let router = app(Duration::from_secs(5));
        let (status, headers, body) = get_status(router.clone(), "/fast").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "fast"));
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'"
        );
        let (status, _, body) = get_status(router, "/wait").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "waited"));
    }

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(MethodLabel::of(&Method::GET).0, "GET");
        assert_eq!(
            MethodLabel::of(&Method::from_bytes(b"PURGE").unwrap()).0,
            "other"
        );
    }
}
