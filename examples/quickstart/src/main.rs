//! The seeds' JWT + session app: a login form, a token endpoint and a protected route.
use std::{net::SocketAddr, sync::Arc};

use axum::{Json, Router, extract::State, routing::get, routing::post};
use countersign::{auth::Auth, keys::KeyRing, keys::SecretKey, password::Password, user::Role};
use countersign_axum::handlers::{self, Credentials, LoginRejection};
use countersign_axum::{AuthState, Authenticated, ClientAddr, CookieConfig, CsrfLayer};
use serde_json::{Value, json};

/// `GET /protected`, with a bearer token or the session cookie.
async fn protected(Authenticated(user): Authenticated) -> Json<Value> {
    let name = user.username;
    Json(json!({ "message": format!("Hello {name}, you have access to this protected route.") }))
}

/// `POST /api/token`: `{"username", "password"}` for an access token and a refresh token.
async fn token(
    State(state): State<Arc<AuthState>>,
    ClientAddr(address): ClientAddr,
    Json(credentials): Json<Credentials>,
) -> Result<Json<Value>, LoginRejection> {
    let Credentials { username, password } = credentials;
    let user = state.auth.login(&username, password, &address).await?;
    let tokens = state.auth.issue_tokens(&user).await?;
    Ok(Json(json!({
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
        "refresh_token": *tokens.refresh_token,
    })))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = std::env::var("SECRET_KEY").map_err(|_| "set SECRET_KEY to a long random key")?;
    let auth = Auth::builder(KeyRing::single(SecretKey::parse(&key)?)).build()?;
    let password = std::env::var("DEMO_PASSWORD").map_err(|_| "set DEMO_PASSWORD")?;
    auth.create_user("john_doe", Password::new(password), Role::user())
        .await?;

    let state = Arc::new(AuthState::new(auth, CookieConfig::secure()));
    let app = Router::new()
        .route("/login", get(handlers::login_form).post(handlers::login))
        .route("/logout", post(handlers::logout))
        .route("/protected", get(protected))
        .route("/api/token", post(token))
        .layer(CsrfLayer::new(Arc::clone(&state)).skip_routes(["/api/token"]))
        .with_state(state);

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    Ok(axum::serve(listener, app).await?)
}
