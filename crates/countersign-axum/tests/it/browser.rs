//! The CSRF guard against a real browser: Debian's headless Chromium, driven through
//! ChromeDriver (WebDriver) by `fantoccini`.
//!
//! A small app built here with the library, on `127.0.0.1` over plain HTTP with the
//! default (secure, `__Host-`) cookies, which Chromium keeps for `http://127.0.0.1`, a
//! secure context. Its pages send `Referrer-Policy: no-referrer`, so Chromium sends
//! `Origin: null` on every form post, its own included. Then:
//!
//! - its own login and logout forms pass (`Origin: null`, `Sec-Fetch-Site: same-origin`);
//! - a form on another port of `127.0.0.1` (same site, another origin), with a valid
//!   pre-session token and cookie, is refused, under the default policy and under
//!   `no-referrer`, unless its origin is one of `AuthState::allowed_origins`, and then
//!   only when it names itself (not `Origin: null`);
//! - a form on `localhost` (another site) is refused under either policy.
//!
//! Every request's `Origin`, `Sec-Fetch-Site` and answer are recorded and asserted: the
//! test shows what Chromium sends, not only what the guard decides. Screenshots go to
//! `target/browser-artifacts/` (`$CARGO_TARGET_DIR` when set).
//!
//! Without Chromium and ChromeDriver the test says why and passes, except under
//! `CI=true`, where it fails. Every wait is bounded; ChromeDriver gets a port picked by
//! the OS, and it (with the browsers it started) is killed when the test ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use axum::extract::{Form, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Router, extract::RawQuery};
use countersign::auth::Auth;
use countersign::password::Password;
use countersign_axum::{
    AuthState, CookieConfig, CsrfLayer, MaybeAuthenticated, csrf_token_for, issue_pre_session_csrf,
};
use fantoccini::{Client, Locator};

use crate::common::fixture;

#[path = "../../../../tests/support/webdriver.rs"]
mod webdriver;
use webdriver::*;

/// The whole scenario, start-up included.
const DEADLINE: Duration = Duration::from_secs(180);
/// The fixture's password for alice.
const PASSWORD: &str = "a long and unusual passphrase";
const FAILURE_SCREENSHOT: &str = "countersign-axum-csrf-failure.png";

// ----- the app under test -----

/// What the app saw of one state-changing request, and how it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    path: String,
    origin: Option<String>,
    fetch_site: Option<String>,
    /// Whether the pre-session CSRF cookie came with it.
    csrf_cookie: bool,
    status: u16,
}

type Journal = Arc<Mutex<Vec<Seen>>>;

#[derive(Clone)]
struct App {
    auth: Arc<AuthState>,
}

impl axum::extract::FromRef<App> for Arc<AuthState> {
    fn from_ref(app: &App) -> Self {
        Arc::clone(&app.auth)
    }
}

/// Text for an HTML attribute or element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title></head><body>{body}</body></html>"
    )
}

async fn login_page(State(app): State<App>) -> Response {
    let (cookie, token) = issue_pre_session_csrf(&app.auth);
    let body = format!(
        "<form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
         <input id=\"username\" name=\"username\"> \
         <input id=\"password\" name=\"password\" type=\"password\"> \
         <button id=\"send\" type=\"submit\">Log in</button></form>",
        escape(&token)
    );
    let mut response = Html(page("Log in", &body)).into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

async fn login(
    State(app): State<App>,
    MaybeAuthenticated(current): MaybeAuthenticated,
    Form(mut form): Form<HashMap<String, String>>,
) -> Response {
    let auth: &Auth = &app.auth.auth;
    let username = form.remove("username").unwrap_or_default();
    let password = Password::new(form.remove("password").unwrap_or_default());
    let Ok(user) = auth.login(&username, password, "127.0.0.1").await else {
        return (StatusCode::UNAUTHORIZED, Html(page("Log in", "Refused"))).into_response();
    };
    match countersign_axum::sign_in(&app.auth, current.as_ref(), &user, "chromium", "127.0.0.1")
        .await
    {
        Ok(cookies) => {
            let mut response = Redirect::to("/page").into_response();
            cookies.apply(&mut response);
            response
        }
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn logout(State(app): State<App>, MaybeAuthenticated(user): MaybeAuthenticated) -> Response {
    match countersign_axum::sign_out(&app.auth, user.as_ref()).await {
        Ok(clear) => {
            let mut response = Redirect::to("/page").into_response();
            response.headers_mut().append(header::SET_COOKIE, clear);
            response
        }
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn home(MaybeAuthenticated(user): MaybeAuthenticated) -> Html<String> {
    let body = match &user {
        Some(user) => format!(
            "<p>Logged in as {}</p><form method=\"post\" action=\"/logout\">\
             <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
             <button id=\"logout\" type=\"submit\">Log out</button></form>",
            escape(&user.username),
            escape(csrf_token_for(user).unwrap_or_default())
        ),
        None => "<p>You are not logged in</p>".to_owned(),
    };
    Html(page("Home", &body))
}

/// The app: `/login` (form and post), `/page`, `/logout`, behind the CSRF guard, every
/// page `Referrer-Policy: no-referrer`; state changes recorded in `journal`.
fn app(auth: Arc<AuthState>, journal: Journal) -> Router {
    let csrf_name: Arc<str> = auth.cookies.csrf_name().into();
    let record = move |request: Request, next: Next| {
        let journal = Arc::clone(&journal);
        let csrf_name = Arc::clone(&csrf_name);
        async move {
            let headers = request.headers();
            let get = |name: &str| {
                headers
                    .get(name)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            };
            let seen = Seen {
                path: request.uri().path().to_owned(),
                origin: get(header::ORIGIN.as_str()),
                fetch_site: get("sec-fetch-site"),
                csrf_cookie: countersign_axum::read_cookie(headers, &csrf_name).is_some(),
                status: 0,
            };
            let post = request.method() == http::Method::POST;
            let response = next.run(request).await;
            if post {
                journal.lock().unwrap().push(Seen {
                    status: response.status().as_u16(),
                    ..seen
                });
            }
            response
        }
    };
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/page", get(home))
        .route("/logout", axum::routing::post(logout))
        .layer(CsrfLayer::new(Arc::clone(&auth)))
        .layer(middleware::map_response(|mut response: Response| async {
            response.headers_mut().insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            response
        }))
        .layer(middleware::from_fn(record))
        .with_state(App { auth })
}

/// Another origin's page: `/form?action=URL&policy=P&NAME=VALUE…` is a form that posts
/// the fields to `action`, sent with `Referrer-Policy: P` when given.
fn forms() -> Router {
    async fn form(RawQuery(query): RawQuery) -> Response {
        let mut action = String::new();
        let mut policy = None;
        let mut fields = String::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match &*name {
                "action" => action = value.into_owned(),
                "policy" => policy = Some(value.into_owned()),
                _ => fields.push_str(&format!(
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                    escape(&name),
                    escape(&value)
                )),
            }
        }
        let body = format!(
            "<form method=\"post\" action=\"{}\">{fields}\
             <button id=\"send\" type=\"submit\">Send</button></form>",
            escape(&action)
        );
        let mut response = Html(page("Elsewhere", &body)).into_response();
        if let Some(policy) = policy {
            response.headers_mut().insert(
                header::REFERRER_POLICY,
                HeaderValue::try_from(policy).unwrap(),
            );
        }
        response
    }
    Router::new().route("/form", get(form))
}

/// Serve `router` on a listener bound to `127.0.0.1:0`; its address. The server task
/// ends with the test's runtime.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

// ----- the scenario -----

struct Sites {
    /// The app: `http://127.0.0.1:PORT`.
    app: String,
    /// Same site, another origin, not allowed: `http://127.0.0.1:OTHER`.
    same_site: String,
    /// Another site: `http://localhost:OTHER`.
    cross_site: String,
    /// Same site, listed in `allowed_origins`: `http://127.0.0.1:SIBLING`.
    sibling: String,
}

/// The last state change the app saw.
fn last(journal: &Journal) -> anyhow::Result<Seen> {
    journal
        .lock()
        .unwrap()
        .last()
        .cloned()
        .context("the app saw no form post")
}

fn seen(path: &str, origin: &str, fetch_site: &str, csrf_cookie: bool, status: u16) -> Seen {
    Seen {
        path: path.to_owned(),
        origin: Some(origin.to_owned()),
        fetch_site: Some(fetch_site.to_owned()),
        csrf_cookie,
        status,
    }
}

/// Whether the browser now has a session with the app.
async fn logged_in(client: &Client, sites: &Sites) -> anyhow::Result<bool> {
    client.goto(&format!("{}/page", sites.app)).await?;
    let text = client.find(Locator::Css("body")).await?.text().await?;
    Ok(text.contains("Logged in as alice"))
}

/// The app's own forms, under its `no-referrer` pages.
async fn own_forms(client: &Client, sites: &Sites, journal: &Journal) -> anyhow::Result<()> {
    client.goto(&format!("{}/login", sites.app)).await?;
    client
        .find(Locator::Id("username"))
        .await?
        .send_keys("alice")
        .await?;
    client
        .find(Locator::Id("password"))
        .await?
        .send_keys(PASSWORD)
        .await?;
    client.find(Locator::Id("send")).await?.click().await?;
    see(client, "Logged in as alice").await?;
    let got = last(journal)?;
    ensure!(
        got == seen("/login", "null", "same-origin", true, 303),
        "the login post: {got:?}"
    );
    // The session cookie is the default one: `__Host-`, Secure, kept over plain HTTP.
    let cookie = client.get_named_cookie("__Host-countersign").await?;
    ensure!(
        cookie.secure() == Some(true) && cookie.http_only() == Some(true),
        "session cookie: {cookie:?}"
    );

    client.find(Locator::Id("logout")).await?.click().await?;
    see(client, "You are not logged in").await?;
    let got = last(journal)?;
    ensure!(
        got == seen("/logout", "null", "same-origin", false, 303),
        "the logout post: {got:?}"
    );
    ensure!(!logged_in(client, sites).await?, "still logged in");
    Ok(())
}

/// alice's login form, sent from `site`'s page (under `policy`, when given) with a valid
/// pre-session token whose cookie the browser holds; what the app saw.
async fn post_from(
    client: &Client,
    sites: &Sites,
    journal: &Journal,
    site: &str,
    policy: Option<&str>,
) -> anyhow::Result<Seen> {
    client.goto(&format!("{}/login", sites.app)).await?;
    let token = client
        .find(Locator::Css("input[name=csrf_token]"))
        .await?
        .attr("value")
        .await?
        .context("no token in the login form")?;
    let target = format!("{}/login", sites.app);
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("action", &target)
        .append_pair("csrf_token", &token)
        .append_pair("username", "alice")
        .append_pair("password", PASSWORD);
    if let Some(policy) = policy {
        query.append_pair("policy", policy);
    }
    client
        .goto(&format!("{site}/form?{}", query.finish()))
        .await?;
    let before = journal.lock().unwrap().len();
    client.find(Locator::Id("send")).await?.click().await?;
    arrive(client, &sites.app)
        .await
        .context("the form post did not arrive")?;
    ensure!(
        journal.lock().unwrap().len() == before + 1,
        "one post recorded"
    );
    let got = last(journal)?;
    let url = client.current_url().await?;
    let shown = status(client).await?;
    if got.status == 303 {
        ensure!(
            url.path() == "/page" && shown == 200,
            "after a login: {shown} at {url}"
        );
    } else {
        ensure!(
            url.as_str() == target && shown == u64::from(got.status),
            "the browser shows {shown} at {url}, the app answered {}",
            got.status
        );
    }
    Ok(got)
}

async fn scenario(client: &Client, sites: &Sites, journal: &Journal) -> anyhow::Result<()> {
    own_forms(client, sites, journal)
        .await
        .context("the app's own forms")?;

    let same_site_origin = sites.same_site.as_str();
    let cross_site_origin = sites.cross_site.as_str();
    let sibling_origin = sites.sibling.as_str();
    // (from, page policy, expected record)
    let refused = [
        (
            same_site_origin,
            None,
            seen("/login", same_site_origin, "same-site", true, 403),
        ),
        (
            same_site_origin,
            Some("no-referrer"),
            seen("/login", "null", "same-site", true, 403),
        ),
        (
            cross_site_origin,
            None,
            // The cookie is `SameSite=Lax`: not sent on another site's POST.
            seen("/login", cross_site_origin, "cross-site", false, 403),
        ),
        (
            cross_site_origin,
            Some("no-referrer"),
            seen("/login", "null", "cross-site", false, 403),
        ),
        (
            // An allowed sibling must name itself.
            sibling_origin,
            Some("no-referrer"),
            seen("/login", "null", "same-site", true, 403),
        ),
    ];
    for (site, policy, want) in refused {
        let got = post_from(client, sites, journal, site, policy)
            .await
            .with_context(|| format!("from {site} under {policy:?}"))?;
        ensure!(
            got == want,
            "from {site} under {policy:?}: {got:?}, not {want:?}"
        );
        ensure!(
            !logged_in(client, sites).await?,
            "logged in by {site} under {policy:?}"
        );
    }

    // The allowed sibling, naming itself, logs in.
    let got = post_from(client, sites, journal, sibling_origin, None)
        .await
        .context("from the allowed sibling")?;
    let want = seen("/login", sibling_origin, "same-site", true, 303);
    ensure!(
        got == want,
        "from the allowed sibling: {got:?}, not {want:?}"
    );
    ensure!(
        logged_in(client, sites).await?,
        "the allowed sibling's login did not take"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_referrer_forms_in_chromium() {
    if !browser_installed() {
        return;
    }
    let _ = std::fs::remove_file(artifacts_dir().join(FAILURE_SCREENSHOT));

    let fx = fixture().await;
    let other = serve(forms()).await;
    let sibling = serve(forms()).await;
    let sibling_origin = format!("http://127.0.0.1:{}", sibling.port());
    let mut state = AuthState::new(Arc::clone(&fx.auth), CookieConfig::default());
    state.allowed_origins.push(sibling_origin.clone());
    let journal = Journal::default();
    let app_addr = serve(app(Arc::new(state), Arc::clone(&journal))).await;
    let sites = Sites {
        app: format!("http://{app_addr}"),
        same_site: format!("http://127.0.0.1:{}", other.port()),
        cross_site: format!("http://localhost:{}", other.port()),
        sibling: sibling_origin,
    };

    let dir = tempfile::tempdir().unwrap();
    let run = async {
        let (_driver, driver_url) = start_chromedriver(dir.path()).await;
        let client = open_browser(&driver_url, &dir.path().join("profile")).await;
        let outcome = scenario(&client, &sites, &journal).await;
        if outcome.is_err()
            && let Ok(png) = client.screenshot().await
        {
            let path = artifacts_dir().join(FAILURE_SCREENSHOT);
            let _ = std::fs::write(&path, png);
            eprintln!("screenshot: {}", path.display());
        }
        // Ends the session, which quits the browser; the driver's group is killed anyway.
        let _ = client.close().await;
        outcome
    };
    let outcome = tokio::time::timeout(DEADLINE, run)
        .await
        .unwrap_or_else(|_| panic!("the browser test took over {DEADLINE:?}"));
    if let Err(e) = outcome {
        panic!("{e:#}\nform posts seen: {:#?}", journal.lock().unwrap());
    }
}
