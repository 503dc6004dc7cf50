//! The crate's error type.

/// Why connecting to Redis failed, or why a stored value could not be read back.
///
/// Store operations report [`countersign::store::StoreError`]; this type is what
/// [`connect`](crate::connect) returns and what a `StoreError::Backend` wraps when a record
/// is not in the shape this crate writes. URLs in it are always redacted
/// ([`redact_url`](crate::redact_url)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The URL is not a Redis URL the client accepts.
    #[error("invalid Redis URL {url}")]
    InvalidUrl {
        /// The URL, password removed.
        url: String,
        /// What the client said.
        #[source]
        source: redis::RedisError,
    },
    /// The server could not be reached, refused the credentials, or did not answer.
    #[error("cannot connect to Redis at {url}")]
    Connect {
        /// The URL, password removed.
        url: String,
        /// What the client said.
        #[source]
        source: redis::RedisError,
    },
    /// The server's TLS certificate did not verify: signed by a CA the client does not
    /// trust (not the CA file's, or not one of the public roots), or for another name. The
    /// connection is never made in plain text instead.
    #[error(
        "the TLS certificate of Redis at {url} was refused ({trust}); check the CA file \
         setting (--redis-ca-file) and the host name in the URL"
    )]
    Certificate {
        /// The URL, password removed.
        url: String,
        /// What the certificate was checked against.
        trust: String,
        /// What the client said.
        #[source]
        source: redis::RedisError,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("cannot use the CA file {} for Redis at {url}", path.display())]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// The URL, password removed.
        url: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A CA file was given for a URL without TLS: it would be ignored.
    #[error("a CA file is set for Redis at {url}, which is not a TLS URL: use rediss://")]
    CaFileWithoutTls {
        /// The URL, password removed.
        url: String,
    },
    /// Connecting took longer than the options allow.
    #[error("connecting to Redis at {url} timed out")]
    ConnectTimeout {
        /// The URL, password removed.
        url: String,
    },
    /// The server is older than Redis 7.0, whose commands (`PEXPIRETIME`) the store uses.
    #[error("Redis at {url} is version {version}; countersign needs 7.0 or later")]
    UnsupportedServer {
        /// The URL, password removed.
        url: String,
        /// The version the server reported.
        version: String,
    },
    /// A store operation did not finish within the operation timeout (connect timeout plus
    /// command timeout): the server is unreachable or stalled. Reported as
    /// `StoreError::Unavailable`.
    #[error("the Redis operation timed out")]
    Timeout,
    /// A stored record lacks a field or holds a value this crate never writes (edited by
    /// hand, or written by another program under the same key prefix).
    #[error("stored {record} record has a missing or invalid {field:?} field")]
    Corrupt {
        /// The kind of record (`session`, `refresh family`, …).
        record: &'static str,
        /// The field that could not be read.
        field: &'static str,
    },
}
