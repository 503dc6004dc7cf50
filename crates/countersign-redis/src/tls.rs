//! `rediss://`: the client for a URL, with the CA file of [`RedisOptions::ca_file`] when
//! one is set, and connection errors that say when the certificate was the problem.
//!
//! TLS is rustls (over ring). Without a CA file the server's certificate must chain to one
//! of the public roots (the webpki set, as for PostgreSQL); with one, to a certificate in
//! that file only. A certificate that does not verify stops the connection (and, at start,
//! the server) with [`RedisError::Certificate`]: nothing falls back to plain text. The host
//! name in the URL must be one the certificate names.

use redis::{Client, TlsCertificates};

use crate::{RedisError, RedisOptions};

/// Whether `url` asks for TLS.
fn is_tls(url: &str) -> bool {
    url.get(..9)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss://"))
        || url
            .get(..10)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("valkeys://"))
}

/// The client for `url` (`redacted` is what errors show).
pub(crate) fn client(url: &str, redacted: &str, opts: &RedisOptions) -> Result<Client, RedisError> {
    let invalid = |source| RedisError::InvalidUrl {
        url: redacted.to_owned(),
        source,
    };
    let Some(path) = &opts.ca_file else {
        return Client::open(url).map_err(invalid);
    };
    if !is_tls(url) {
        return Err(RedisError::CaFileWithoutTls {
            url: redacted.to_owned(),
        });
    }
    let ca_error = |source: Box<dyn std::error::Error + Send + Sync>| RedisError::CaFile {
        path: path.clone(),
        url: redacted.to_owned(),
        source,
    };
    let pem = std::fs::read(path).map_err(|e| ca_error(Box::new(e)))?;
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(ca_error("it holds no PEM certificate".into()));
    }
    Client::build_with_tls(
        url,
        TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        },
    )
    .map_err(|e| match e.kind() {
        redis::ErrorKind::InvalidClientConfig => ca_error(Box::new(e)),
        _ => invalid(e),
    })
}

/// A failed first connection: [`RedisError::Certificate`] when TLS refused the server's
/// certificate, else [`RedisError::Connect`].
pub(crate) fn connect_error(
    url: String,
    opts: &RedisOptions,
    source: redis::RedisError,
) -> RedisError {
    if is_certificate_error(&source) {
        let trust = match &opts.ca_file {
            Some(path) => format!("checked against the CA file {}", path.display()),
            None => "checked against the public root CAs; set a CA file for a private CA".into(),
        };
        RedisError::Certificate { url, trust, source }
    } else {
        RedisError::Connect { url, source }
    }
}

/// Whether rustls refused the peer's certificate somewhere in `e`'s chain.
fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(rustls) = e.downcast_ref::<rustls::Error>()
            && matches!(
                rustls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        {
            return true;
        }
        if e.to_string().contains("invalid peer certificate") {
            return true;
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_ca_file_needs_tls_and_a_certificate() {
        let mut opts = RedisOptions::default();
        let dir = std::env::temp_dir().join(format!("cs-redis-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        opts.ca_file = Some(empty.clone());
        let e = client("redis://127.0.0.1:6379", "redis://127.0.0.1:6379", &opts).unwrap_err();
        assert!(matches!(e, RedisError::CaFileWithoutTls { .. }), "{e:?}");
        let e = client("rediss://127.0.0.1:6379", "rediss://127.0.0.1:6379", &opts).unwrap_err();
        assert!(matches!(e, RedisError::CaFile { .. }), "{e:?}");
        assert!(e.to_string().contains("empty.pem"), "{e}");
        opts.ca_file = Some(dir.join("missing.pem"));
        let e = client("rediss://127.0.0.1:6379", "rediss://127.0.0.1:6379", &opts).unwrap_err();
        assert!(matches!(e, RedisError::CaFile { .. }), "{e:?}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(is_tls("REDISS://h") && is_tls("valkeys://h") && !is_tls("redis://h"));
    }
}
