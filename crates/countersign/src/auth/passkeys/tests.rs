//! Passkey ceremonies against a software authenticator (`mfa::passkey::soft`): the real
//! library verifying real ES256 signatures over real CBOR, with the clock in the test's
//! hands.

use serde_json::Value;

use crate::clock::Clock as _;

use super::*;
use crate::auth::testkit::*;
use crate::mfa::passkey::soft::SoftAuthenticator;

const ORIGIN: &str = "https://auth.example.test";

fn passkey_fixture() -> Fixture {
    let mut f = fixture();
    let mut config = f.auth.config.clone();
    config.passkeys = Some(PasskeyConfig::from_url(ORIGIN).unwrap());
    f.auth = Auth::new(
        KeyRing::single(f.key.clone()),
        config,
        f.store.clone(),
        f.store.clone(),
        f.auth.pool.clone(),
        Arc::new(f.clock.clone()),
    );
    f
}

fn text(v: &Value) -> String {
    v.to_string()
}

/// Register a passkey named `name` for `user` with `key`.
async fn register(
    f: &Fixture,
    key: &mut SoftAuthenticator,
    user: &User,
    name: &str,
) -> Result<PasskeyRegistered, PasskeyError> {
    let c = f.auth.begin_passkey_registration(user).await?;
    let answer = key.create(&c.options);
    f.auth
        .finish_passkey_registration(user, &c.state, &text(&answer), name)
        .await
}

async fn passwordless(
    f: &Fixture,
    key: &mut SoftAuthenticator,
) -> Result<(User, Authentication), PasskeyError> {
    let c = f.auth.begin_passkey_login()?;
    assert!(
        c.options["publicKey"]
            .get("allowCredentials")
            .is_none_or(|a| a.as_array().is_some_and(Vec::is_empty))
    );
    let answer = key.get(&c.options);
    f.auth
        .finish_passkey_login(&c.state, &text(&answer), "ip")
        .await
}

#[tokio::test]
async fn register_then_sign_in_without_a_password() {
    let f = passkey_fixture();
    let a = alice(&f).await;
    let mut key = SoftAuthenticator::new(ORIGIN);
    let c = f.auth.begin_passkey_registration(&a).await.unwrap();
    let selection = &c.options["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["userVerification"], "required");
    assert_eq!(c.options["publicKey"]["rp"]["id"], "auth.example.test");
    let answer = key.create(&c.options);
    let done = f
        .auth
        .finish_passkey_registration(&a, &c.state, &text(&answer), " Laptop ")
        .await
        .unwrap();
    assert_eq!(done.passkey.name, "Laptop");
    assert!(!done.passkey.synced);
    assert_eq!(
        done.recovery_codes.as_ref().map(|c| c.codes.len()),
        Some(10),
        "the first factor comes with recovery codes"
    );
    let methods = f.auth.mfa_methods(a.id).await.unwrap();
    assert_eq!(methods.passkeys, 1);
    assert_eq!(methods.names(), ["webauthn", "recovery"]);
    // The factor's id is the credential id, so the login finds it.
    assert_eq!(
        done.passkey.id.as_str(),
        crate::b64::encode(&key.credentials[0].id)
    );

    let (user, authn) = passwordless(&f, &mut key).await.unwrap();
    assert_eq!(user.id, a.id);
    assert_eq!(authn.amr.to_text(), "hwk mfa");
    let listed = f.auth.passkeys(a.id).await.unwrap();
    assert_eq!(listed[0].last_used_at, Some(f.clock.now()));
    // Twice: the counter moved forwards and was stored.
    passwordless(&f, &mut key).await.unwrap();
    let factor = f.auth.factors(a.id).await.unwrap().remove(0);
    assert_eq!(factor.counter, 2);

    // The second passkey: its registration excludes the first, brings no new codes.
    let c = f.auth.begin_passkey_registration(&a).await.unwrap();
    let excluded = c.options["publicKey"]["excludeCredentials"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(excluded.len(), 1);
    assert_eq!(excluded[0]["id"], done.passkey.id.as_str());
    let mut phone = SoftAuthenticator::new(ORIGIN);
    phone.backup_eligible = true;
    phone.counter_step = 0;
    let answer = phone.create(&c.options);
    let second = f
        .auth
        .finish_passkey_registration(&a, &c.state, &text(&answer), "Phone")
        .await
        .unwrap();
    assert!(second.recovery_codes.is_none());
    assert!(second.passkey.synced);
    // Both authenticators hold the same user handle.
    assert_eq!(
        phone.credentials[0].user_handle,
        key.credentials[0].user_handle
    );
    // A synced passkey (counter always 0) signs in again and again, as `swk`.
    for _ in 0..2 {
        let (_, authn) = passwordless(&f, &mut phone).await.unwrap();
        assert_eq!(authn.amr.to_text(), "swk mfa");
    }
}

#[tokio::test]
async fn a_passkey_is_a_second_factor_after_the_password() {
    let f = passkey_fixture();
    let a = alice(&f).await;
    let mut key = SoftAuthenticator::new(ORIGIN);
    register(&f, &mut key, &a, "Key").await.unwrap();
    let user = f
        .auth
        .login("alice", Password::new(PW), "ip")
        .await
        .unwrap();
    let ch = f
        .auth
        .mfa_challenge(&user, Amr::PWD)
        .await
        .unwrap()
        .unwrap();
    assert!(ch.methods.names().contains(&"webauthn"));
    let c = f.auth.begin_passkey_mfa(&ch.token).await.unwrap();
    let allowed = c.options["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap();
    assert_eq!(allowed.len(), 1);
    let answer = text(&key.get(&c.options));
    let (u, authn) = f
        .auth
        .complete_mfa_passkey(&ch.token, &c.state, &answer, "ip")
        .await
        .unwrap();
    assert_eq!(u.id, a.id);
    assert_eq!(authn.amr.to_text(), "pwd hwk mfa");
    // The challenge is used up: a fresh ceremony on it is refused.
    assert!(matches!(
        f.auth.begin_passkey_mfa(&ch.token).await,
        Err(PasskeyError::Expired)
    ));
    // So is the state, replayed on a new challenge.
    let ch2 = f
        .auth
        .mfa_challenge(&user, Amr::PWD)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        f.auth
            .complete_mfa_passkey(&ch2.token, &c.state, &answer, "ip")
            .await,
        Err(PasskeyError::Expired)
    ));
    // Bob's state does not finish Alice's challenge.
    let b = f
        .auth
        .create_user("bob", Password::new(PW), Role::user())
        .await
        .unwrap();
    let mut bobs = SoftAuthenticator::new(ORIGIN);
    register(&f, &mut bobs, &b, "Bob's").await.unwrap();
    let bob_ch = f.auth.mfa_challenge(&b, Amr::PWD).await.unwrap().unwrap();
    let bob_c = f.auth.begin_passkey_mfa(&bob_ch.token).await.unwrap();
    let bob_answer = text(&bobs.get(&bob_c.options));
    assert!(matches!(
        f.auth
            .complete_mfa_passkey(&ch2.token, &bob_c.state, &bob_answer, "ip")
            .await,
        Err(PasskeyError::Expired)
    ));
    // Nor does Bob's passkey answer Alice's ceremony.
    let c = f.auth.begin_passkey_mfa(&ch2.token).await.unwrap();
    let wrong = text(&bobs.get(&c.options));
    assert!(matches!(
        f.auth
            .complete_mfa_passkey(&ch2.token, &c.state, &wrong, "ip")
            .await,
        Err(PasskeyError::Invalid)
    ));
    // Step-up with the passkey.
    let c = f.auth.begin_passkey_verification(&a).await.unwrap();
    let answer = text(&key.get(&c.options));
    assert_eq!(
        f.auth
            .verify_passkey(&a, &c.state, &answer, "ip")
            .await
            .unwrap(),
        Amr::HWK
    );
}

#[tokio::test]
async fn another_rp_id_or_origin_is_refused() {
    let f = passkey_fixture();
    let a = alice(&f).await;
    // Made for another site: its authenticator data names another RP ID's hash.
    let mut elsewhere = SoftAuthenticator::new(ORIGIN);
    elsewhere.rp_id_override = Some("evil.example".to_owned());
    assert!(matches!(
        register(&f, &mut elsewhere, &a, "x").await,
        Err(PasskeyError::Invalid)
    ));
    // Made at another origin.
    let mut phished = SoftAuthenticator::new("https://auth.example.test.evil.example");
    assert!(matches!(
        register(&f, &mut phished, &a, "x").await,
        Err(PasskeyError::Invalid)
    ));
    assert_eq!(f.auth.passkeys(a.id).await.unwrap().len(), 0);
    // A good passkey, then assertions signed for another RP ID or at another origin.
    let mut key = SoftAuthenticator::new(ORIGIN);
    register(&f, &mut key, &a, "Key").await.unwrap();
    key.rp_id_override = Some("evil.example".to_owned());
    assert!(matches!(
        passwordless(&f, &mut key).await,
        Err(PasskeyError::Invalid)
    ));
    key.rp_id_override = None;
    key.origin = "http://auth.example.test".to_owned();
    assert!(matches!(
        passwordless(&f, &mut key).await,
        Err(PasskeyError::Invalid)
    ));
    key.origin = ORIGIN.to_owned();
    passwordless(&f, &mut key).await.unwrap();
    // A relying party configured for another domain refuses this one's credentials.
    let mut config = f.auth.config.clone();
    config.passkeys = Some(PasskeyConfig::from_url("https://other.example.test").unwrap());
    let other = Auth::new(
        KeyRing::single(f.key.clone()),
        config,
        f.store.clone(),
        f.store.clone(),
        f.auth.pool.clone(),
        Arc::new(f.clock.clone()),
    );
    let c = other.begin_passkey_login().unwrap();
    let answer = text(&key.get(&c.options));
    assert!(matches!(
        other.finish_passkey_login(&c.state, &answer, "ip").await,
        Err(PasskeyError::Invalid)
    ));
    // Even a key moved to the other site (its origin, its RP ID's hash): the stored
    // passkey was registered for this RP ID.
    key.origin = "https://other.example.test".to_owned();
    let c = other.begin_passkey_login().unwrap();
    let answer = text(&key.get(&c.options));
    assert!(matches!(
        other.finish_passkey_login(&c.state, &answer, "ip").await,
        Err(PasskeyError::Invalid)
    ));
    // Nor is it offered as a second factor there.
    let ch = other.mfa_challenge(&a, Amr::PWD).await.unwrap().unwrap();
    assert!(matches!(
        other.begin_passkey_mfa(&ch.token).await,
        Err(PasskeyError::Invalid)
    ));
}

#[tokio::test]
async fn a_signature_counter_going_backwards_is_refused_and_flagged() {
    let f = passkey_fixture();
    let a = alice(&f).await;
    let mut key = SoftAuthenticator::new(ORIGIN);
    register(&f, &mut key, &a, "Key").await.unwrap();
    for _ in 0..3 {
        passwordless(&f, &mut key).await.unwrap();
    }
    // A copy of the key that signed fewer times: its next count is one the server saw.
    key.credentials[0].sign_count = 1;
    assert!(matches!(
        passwordless(&f, &mut key).await,
        Err(PasskeyError::Invalid)
    ));
    let listed = f.auth.passkeys(a.id).await.unwrap();
    assert_eq!(listed[0].counter_regressed_at, Some(f.clock.now()));
    // As a second factor too.
    let ch = f.auth.mfa_challenge(&a, Amr::PWD).await.unwrap().unwrap();
    let c = f.auth.begin_passkey_mfa(&ch.token).await.unwrap();
    key.credentials[0].sign_count = 0;
    let answer = text(&key.get(&c.options));
    assert!(matches!(
        f.auth
            .complete_mfa_passkey(&ch.token, &c.state, &answer, "ip")
            .await,
        Err(PasskeyError::Invalid)
    ));
    // The stored counter never went back.
    assert_eq!(f.auth.factors(a.id).await.unwrap()[0].counter, 3);
    // A count past the stored one is accepted again (the flag stays for the user to see).
    key.credentials[0].sign_count = 10;
    passwordless(&f, &mut key).await.unwrap();
    assert_eq!(f.auth.factors(a.id).await.unwrap()[0].counter, 11);
    assert!(
        f.auth.passkeys(a.id).await.unwrap()[0]
            .counter_regressed_at
            .is_some()
    );
}

#[tokio::test]
async fn a_non_zero_counter_may_not_drop_to_zero() {
    let f = passkey_fixture();
    let a = alice(&f).await;
    let mut key = SoftAuthenticator::new(ORIGIN);
    register(&f, &mut key, &a, "Key").await.unwrap();
    passwordless(&f, &mut key).await.unwrap();
    key.credentials[0].sign_count = 0;
    key.counter_step = 0;
    assert!(matches!(
        passwordless(&f, &mut key).await,
        Err(PasskeyError::Invalid)
    ));
}

#[tokio::test]
async fn states_are_single_use_expire_and_belong_to_their_ceremony() {
    let f = passkey_fixture();
    let a = alice(&f).await;
    let mut key = SoftAuthenticator::new(ORIGIN);
    register(&f, &mut key, &a, "Key").await.unwrap();
    let c = f.auth.begin_passkey_login().unwrap();
    let answer = text(&key.get(&c.options));
    f.auth
        .finish_passkey_login(&c.state, &answer, "ip")
        .await
        .unwrap();
    assert!(matches!(
        f.auth.finish_passkey_login(&c.state, &answer, "ip").await,
        Err(PasskeyError::Expired)
    ));
    // Expired after five minutes.
    let c = f.auth.begin_passkey_login().unwrap();
    let answer = text(&key.get(&c.options));
    f.clock.advance(301);
    assert!(matches!(
        f.auth.finish_passkey_login(&c.state, &answer, "ip").await,
        Err(PasskeyError::Expired)
    ));
    // A registration state is not a login state; a tampered or foreign one opens nothing.
    let reg = f.auth.begin_passkey_registration(&a).await.unwrap();
    let mut tampered = reg.state.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for state in [
        reg.state.as_str(),
        tampered.as_str(),
        "",
        "!!",
        &"A".repeat(70_000),
    ] {
        assert!(matches!(
            f.auth.finish_passkey_login(state, &answer, "ip").await,
            Err(PasskeyError::Expired)
        ));
    }
    // Another user's registration state does not register for this one.
    let b = f
        .auth
        .create_user("bob", Password::new(PW), Role::user())
        .await
        .unwrap();
    let reg = f.auth.begin_passkey_registration(&b).await.unwrap();
    let made = text(&key.create(&reg.options));
    assert!(matches!(
        f.auth
            .finish_passkey_registration(&a, &reg.state, &made, "x")
            .await,
        Err(PasskeyError::Expired)
    ));
    // Not JSON, or not a credential: malformed, and the state is not spent.
    let reg = f.auth.begin_passkey_registration(&a).await.unwrap();
    for junk in ["", "{", "{\"id\": 1}", "[]"] {
        assert!(matches!(
            f.auth
                .finish_passkey_registration(&a, &reg.state, junk, "x")
                .await,
            Err(PasskeyError::Malformed(_))
        ));
    }
    let made = text(&key.create(&reg.options));
    f.auth
        .finish_passkey_registration(&a, &reg.state, &made, "Second")
        .await
        .unwrap();
}

#[tokio::test]
async fn user_verification_and_the_user_handle_are_required() {
    let f = passkey_fixture();
    let a = alice(&f).await;
    let mut key = SoftAuthenticator::new(ORIGIN);
    key.user_verified = false;
    assert!(matches!(
        register(&f, &mut key, &a, "Key").await,
        Err(PasskeyError::Invalid)
    ));
    key.user_verified = true;
    register(&f, &mut key, &a, "Key").await.unwrap();
    key.user_verified = false;
    assert!(matches!(
        passwordless(&f, &mut key).await,
        Err(PasskeyError::Invalid)
    ));
    key.user_verified = true;
    // An answer naming another user handle.
    let c = f.auth.begin_passkey_login().unwrap();
    let mut answer = key.get(&c.options);
    answer["response"]["userHandle"] = Value::from("AAAAAAAAAAAAAAAAAAAAAA");
    assert!(matches!(
        f.auth
            .finish_passkey_login(&c.state, &text(&answer), "ip")
            .await,
        Err(PasskeyError::Invalid)
    ));
}

#[tokio::test]
async fn unknown_credentials_and_disabled_users_cannot_sign_in() {
    let f = passkey_fixture();
    let a = alice(&f).await;
    let mut key = SoftAuthenticator::new(ORIGIN);
    register(&f, &mut key, &a, "Key").await.unwrap();
    // A key nobody registered (made against a state never finished).
    let mut stranger = SoftAuthenticator::new(ORIGIN);
    let c = f.auth.begin_passkey_registration(&a).await.unwrap();
    stranger.create(&c.options);
    assert!(matches!(
        passwordless(&f, &mut stranger).await,
        Err(PasskeyError::Invalid)
    ));
    f.auth.disable_user(a.id).await.unwrap();
    assert!(matches!(
        passwordless(&f, &mut key).await,
        Err(PasskeyError::Invalid)
    ));
    f.auth.enable_user(a.id).await.unwrap();
    passwordless(&f, &mut key).await.unwrap();
}

#[tokio::test]
async fn failed_assertions_spend_the_login_throttle() {
    let f = passkey_fixture();
    let a = alice(&f).await;
    let mut key = SoftAuthenticator::new(ORIGIN);
    register(&f, &mut key, &a, "Key").await.unwrap();
    key.origin = "https://evil.example".to_owned();
    let mut throttled = false;
    for _ in 0..=f.auth.config.throttle.per_account {
        match passwordless(&f, &mut key).await {
            Err(PasskeyError::Invalid) => {}
            Err(PasskeyError::Throttled { retry_after }) => {
                assert!(retry_after > 0);
                throttled = true;
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(throttled);
    // The account's password login is throttled too.
    assert!(matches!(
        f.auth.login("alice", Password::new(PW), "ip2").await,
        Err(crate::auth::LoginError::Throttled { .. })
    ));
}

#[tokio::test]
async fn rename_and_remove() {
    let f = passkey_fixture();
    let a = alice(&f).await;
    let b = f
        .auth
        .create_user("bob", Password::new(PW), Role::user())
        .await
        .unwrap();
    let mut key = SoftAuthenticator::new(ORIGIN);
    let id = register(&f, &mut key, &a, "Key").await.unwrap().passkey.id;
    assert!(f.auth.rename_passkey(a.id, &id, "YubiKey").await.unwrap());
    assert_eq!(f.auth.passkeys(a.id).await.unwrap()[0].name, "YubiKey");
    assert!(matches!(
        f.auth.rename_passkey(a.id, &id, "\u{7}").await,
        Err(PasskeyError::BadName)
    ));
    assert!(!f.auth.rename_passkey(b.id, &id, "Mine").await.unwrap());
    assert!(
        !f.auth.remove_passkey(b.id, &id).await.unwrap(),
        "not Bob's"
    );
    let unknown = FactorId("nope".to_owned());
    assert!(!f.auth.remove_passkey(a.id, &unknown).await.unwrap());
    assert!(f.auth.remove_passkey(a.id, &id).await.unwrap());
    assert!(f.auth.passkeys(a.id).await.unwrap().is_empty());
    // The last factor gone, its recovery codes went with it, and the key signs in no more.
    assert!(f.auth.recovery_code_status(a.id).await.unwrap().is_empty());
    assert!(f.auth.mfa_challenge(&a, Amr::PWD).await.unwrap().is_none());
    assert!(matches!(
        passwordless(&f, &mut key).await,
        Err(PasskeyError::Invalid)
    ));
    // Nothing to ask for without a passkey.
    assert!(matches!(
        f.auth.begin_passkey_verification(&a).await,
        Err(PasskeyError::Invalid)
    ));
}

#[tokio::test]
async fn without_a_relying_party_passkeys_are_off() {
    let f = fixture();
    let a = alice(&f).await;
    assert!(f.auth.passkey_config().is_none());
    assert!(matches!(
        f.auth.begin_passkey_registration(&a).await,
        Err(PasskeyError::Disabled)
    ));
    assert!(matches!(
        f.auth.begin_passkey_login(),
        Err(PasskeyError::Disabled)
    ));
}
