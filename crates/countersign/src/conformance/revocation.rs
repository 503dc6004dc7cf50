//! The `jti` denylist and the issued-before marks.

use crate::store::RevocationStore;

use super::fixtures::*;

/// The `jti` denylist and issued-before marks.
pub async fn revocation<S: RevocationStore>(s: &S) {
    let jti = crate::random::token_id();
    assert!(!s.is_jti_denied(&jti, T0).await.unwrap());
    s.deny_jti(&jti, T0.add_secs(60)).await.unwrap();
    assert!(s.is_jti_denied(&jti, T0).await.unwrap());
    assert!(s.is_jti_denied(&jti, T0.add_secs(59)).await.unwrap());
    assert!(!s.is_jti_denied(&jti, T0.add_secs(60)).await.unwrap());

    let user = random_user_id();
    assert_eq!(s.issued_before(user).await.unwrap(), None);
    s.revoke_issued_before(user, T0.add_secs(10)).await.unwrap();
    s.revoke_issued_before(user, T0).await.unwrap();
    assert_eq!(s.issued_before(user).await.unwrap(), Some(T0.add_secs(10)));
    s.revoke_issued_before(user, T0.add_secs(20)).await.unwrap();
    assert_eq!(s.issued_before(user).await.unwrap(), Some(T0.add_secs(20)));
}
