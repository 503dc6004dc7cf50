//! `/.well-known/jwks.json` and discovery in-process, and bearer tokens signed with an
//! EdDSA or ES256 key: published, cacheable with `ETag`/304, verified on `/protected`,
//! revocable; HS256 tokens kept during the migration and refused once switched off.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use countersign::clock::UnixTime;
use countersign::jwt::{self, Algorithm, PublicKeys, Signer, TokenKeys, Validation};
use countersign::signing::SigningKey;
use serde_json::json;

use super::{Server, T0};

const ISSUER: &str = "https://auth.example";

/// A new `alg` key: one copy to sign with, one for the test.
fn key_pair(alg: Algorithm) -> (SigningKey, SigningKey) {
    let (key, pem) = SigningKey::generate(alg).unwrap();
    (SigningKey::from_pem(&pem).unwrap(), key)
}

/// Token keys signing with `signer`, publishing it and `also`.
fn token_keys(signer: SigningKey, also: &[&SigningKey], accept_hs256: bool) -> TokenKeys {
    let mut public = vec![signer.public().clone()];
    public.extend(also.iter().map(|k| k.public().clone()));
    TokenKeys::new(
        Some(Signer::new(signer)),
        PublicKeys::new(public).unwrap(),
        accept_hs256,
        Some(ISSUER.into()),
    )
    .unwrap()
    .with_jwks_max_age(120)
}

#[tokio::test]
async fn jwks_is_empty_and_discovery_absent_while_hs256_signs() {
    let s = Server::new();
    let r = s.get("/.well-known/jwks.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"keys": []}));
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    assert!(r.header("etag").is_some_and(|e| e.starts_with('"')));
    let r = s.get("/.well-known/openid-configuration").await;
    assert_eq!(
        (r.status, r.error.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    // Every other answer keeps no-store.
    assert_eq!(
        s.get("/healthz").await.header("cache-control"),
        Some("no-store")
    );
}

#[tokio::test]
async fn signed_tokens_verify_with_the_published_keys_only() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256] {
        let s = Server::new();
        s.add_user("alice", "user").await;
        let hs256 = s.tokens("alice").await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (signer, key) = key_pair(alg);
        let (_, staged) = key_pair(Algorithm::EdDSA);
        s.app
            .engine()
            .set_token_keys(token_keys(signer, &[&staged], true));

        // The JWK Set: both keys, public members only, cacheable.
        let r = s.get("/.well-known/jwks.json").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("cache-control"), Some("public, max-age=120"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let set = r.json();
        let kids: Vec<&str> = set["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, [key.kid(), staged.kid()]);
        for k in set["keys"].as_array().unwrap() {
            assert_eq!(k["use"], "sig");
            assert!(k.get("d").is_none() && k.get("k").is_none(), "{k}");
        }
        assert_eq!(set["keys"][0]["alg"], alg.as_str());
        let etag = r.header("etag").unwrap().to_owned();
        let again = s
            .send(
                Request::get("/.well-known/jwks.json")
                    .header(header::IF_NONE_MATCH, &etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED);
        assert_eq!(again.body, "");
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        let stale = s
            .send(
                Request::get("/.well-known/jwks.json")
                    .header(header::IF_NONE_MATCH, "\"other\"")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(stale.status, StatusCode::OK);

        // Discovery, under both names.
        for path in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ] {
            let d = s.get(path).await;
            assert_eq!(d.status, StatusCode::OK, "{d:?}");
            // Each algorithm of the published keys once, EdDSA before ES256.
            let algs = match alg {
                Algorithm::ES256 => vec!["EdDSA", "ES256"],
                _ => vec!["EdDSA"],
            };
            assert_eq!(
                d.json(),
                json!({
                    "issuer": ISSUER,
                    "jwks_uri": "https://auth.example/.well-known/jwks.json",
                    "token_endpoint": "https://auth.example/api/token",
                    "revocation_endpoint": "https://auth.example/api/token/revoke",
                    "grant_types_supported": ["password", "refresh_token"],
                    "token_endpoint_auth_methods_supported": ["none"],
                    "revocation_endpoint_auth_methods_supported": ["none"],
                    "access_token_signing_alg_values_supported": algs,
                })
            );
        }

        // A login now gets a signed token, which the published set alone verifies.
        let pair = s.tokens("alice").await;
        let token = pair["access_token"].as_str().unwrap();
        let published = PublicKeys::from_jwks(set.to_string().as_bytes()).unwrap();
        let ok = jwt::verify_any(
            None,
            &published,
            &Validation::default(),
            token,
            UnixTime(T0),
        )
        .unwrap();
        assert_eq!((ok.algorithm, ok.key_index), (alg, 0));
        assert_eq!(ok.claims.iss.as_deref(), Some(ISSUER));
        assert_eq!(ok.claims.username.as_deref(), Some("alice"));
        let r = s.bearer(Method::GET, "/protected", token).await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        // The HS256 token from before the switch still works (migration).
        let r = s.bearer(Method::GET, "/protected", &hs256).await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        // A refreshed pair is signed too.
        let refreshed = s
            .post_json(
                "/api/token/refresh",
                &json!({"refresh_token": pair["refresh_token"]}),
            )
            .await
            .json();
        let (h, _) =
            jwt::dangerous::decode_unverified(refreshed["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(h["alg"], alg.as_str());
        // Revoked by jti like any access token.
        let r = s
            .post_json("/api/token/revoke", &json!({"token": token}))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = s.bearer(Method::GET, "/protected", token).await;
        assert_eq!(
            (r.status, r.error.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_token")
        );
    }
}

#[tokio::test]
async fn hs256_switched_off_and_foreign_or_pruned_keys_refused() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let hs256 = s.tokens("alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (signer, key) = key_pair(Algorithm::ES256);
    s.app
        .engine()
        .set_token_keys(token_keys(signer, &[], false));
    let r = s.bearer(Method::GET, "/protected", &hs256).await;
    assert_eq!(
        (r.status, r.error.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    let signed = s.tokens("alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.bearer(Method::GET, "/protected", &signed).await.status,
        StatusCode::OK
    );
    // The signing key is rotated out and pruned: its tokens stop verifying.
    let (next, _) = key_pair(Algorithm::ES256);
    s.app
        .engine()
        .set_token_keys(token_keys(next, &[&key], false));
    assert_eq!(
        s.bearer(Method::GET, "/protected", &signed).await.status,
        StatusCode::OK,
        "retired but published: still valid"
    );
    let (next, _) = key_pair(Algorithm::ES256);
    s.app.engine().set_token_keys(token_keys(next, &[], false));
    let r = s.bearer(Method::GET, "/protected", &signed).await;
    assert_eq!(
        (r.status, r.error.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
}
