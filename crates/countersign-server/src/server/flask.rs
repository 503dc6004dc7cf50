//! The Flask bridge in the server (`--flask-bridge`, `[flask]`): see
//! `countersign::flask::bridge` for the rules and `docs/flask.md` for the migration.
//!
//! - [`exchange`]: a middleware on every route. A `GET` or `HEAD` that carries the Flask
//!   cookie, no bearer token and no live countersign session is given a countersign
//!   session: the request goes on with the new session cookie in place of any stale one,
//!   and the response sets it. A cookie that fails any check is ignored (the request goes
//!   on as if it had none), never an error page; the reason is logged at debug level.
//! - [`write_back`] and [`clear`]: with `write = true`, a login also sets a Flask session
//!   cookie naming the user, and a logout clears it.

use axum::extract::{FromRequestParts as _, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use countersign::flask::bridge::ExchangeError;
use countersign::user::User;
use countersign_axum::read_cookie;

use super::state::{App, ClientAddr, UserAgent};

/// Exchange a Flask session cookie for a countersign session (see the module docs).
pub async fn exchange(State(app): State<App>, request: Request, next: Next) -> Response {
    let Some(bridge) = app.site.flask.as_ref() else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let eligible = matches!(*request.method(), Method::GET | Method::HEAD)
        && !headers.contains_key(header::AUTHORIZATION);
    let Some(flask_cookie) = read_cookie(headers, &bridge.cookie_name).filter(|_| eligible) else {
        return next.run(request).await;
    };
    let state = &app.auth;
    let session_name = state.cookies.session_name();
    if let Some(current) = read_cookie(headers, session_name)
        && state.auth.session(current).await.is_ok()
    {
        return next.run(request).await;
    }
    let flask_cookie = flask_cookie.to_owned();
    let (mut parts, body) = request.into_parts();
    let Ok(ClientAddr(address)) = ClientAddr::from_request_parts(&mut parts, &app).await;
    let Ok(UserAgent(user_agent)) = UserAgent::from_request_parts(&mut parts, &app).await;
    let exchanged = bridge
        .exchange(&state.auth, &flask_cookie, &user_agent, &address)
        .await;
    let exchanged = match exchanged {
        Ok(x) => x,
        Err(e) => {
            log_refusal(&e);
            return next.run(Request::from_parts(parts, body)).await;
        }
    };
    tracing::info!(
        user = %exchanged.user.username,
        client = %address,
        "flask session exchanged for a countersign session"
    );
    metrics::counter!("countersign_flask_exchanges_total").increment(1);
    replace_cookie(&mut parts.headers, session_name, &exchanged.cookie);
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let max_age = state.auth.config().sessions.absolute_secs;
    response.headers_mut().append(
        header::SET_COOKIE,
        state.cookies.session_cookie(&exchanged.cookie, max_age),
    );
    response
}

fn log_refusal(e: &ExchangeError) {
    match e {
        ExchangeError::Store(s) => {
            tracing::warn!(error = %s, "flask session not exchanged: store failure");
        }
        e => tracing::debug!(reason = %e, "flask session cookie ignored"),
    }
}

/// The request's `Cookie` headers with every `name` cookie dropped and `name=value` added,
/// so the handlers see the new session and not a stale one.
fn replace_cookie(headers: &mut axum::http::HeaderMap, name: &str, value: &str) {
    let mut pairs: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| {
            !pair.is_empty() && pair.split_once('=').is_none_or(|(k, _)| k.trim() != name)
        })
        .map(str::to_owned)
        .collect();
    pairs.push(format!("{name}={value}"));
    headers.remove(header::COOKIE);
    // Invariant: the kept pairs came from valid header values and the session cookie is
    // base64url and dots, so the joined text is a valid header value.
    if let Ok(joined) = HeaderValue::from_str(&pairs.join("; ")) {
        headers.insert(header::COOKIE, joined);
    }
}

/// `Set-Cookie` for a Flask session cookie: `Path=/; HttpOnly; SameSite=Lax`, `Secure`
/// unless cookies are insecure; a browser-session cookie (no `Max-Age`), as Flask sets a
/// session that is not permanent. `None` when the value cannot be a header (never for the
/// cookies made here).
fn flask_set_cookie(app: &App, name: &str, value: &str, delete: bool) -> Option<HeaderValue> {
    let mut text = format!("{name}={value}; Path=/");
    if delete {
        text.push_str("; Max-Age=0");
    }
    text.push_str("; HttpOnly");
    if app.auth.cookies.is_secure() {
        text.push_str("; Secure");
    }
    text.push_str("; SameSite=Lax");
    let mut value = HeaderValue::from_str(&text).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// With `write = true`: add to a login's response the Flask session cookie naming `user`.
pub fn write_back(app: &App, user: &User, response: &mut Response) {
    let Some(bridge) = app.site.flask.as_ref().filter(|b| b.write) else {
        return;
    };
    let value = bridge.cookie_for(app.engine(), user);
    if let Some(cookie) = flask_set_cookie(app, &bridge.cookie_name, &value, false) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
}

/// With `write = true`: add to a logout's response the `Set-Cookie` that deletes the Flask
/// session cookie.
pub fn clear(app: &App, response: &mut Response) {
    let Some(bridge) = app.site.flask.as_ref().filter(|b| b.write) else {
        return;
    };
    if let Some(cookie) = flask_set_cookie(app, &bridge.cookie_name, "", true) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_replaced_and_the_rest_kept() {
        let mut headers = axum::http::HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("session=flask.v.s; countersign=stale"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("other=1"));
        replace_cookie(&mut headers, "countersign", "fresh.mac");
        assert_eq!(headers.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(
            headers[header::COOKIE],
            "session=flask.v.s; other=1; countersign=fresh.mac"
        );
    }
}
