//! Who sent a request and where it was sent to, believing proxies only when configured
//! (the rules are on [`Origin`]).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use http::request::Parts;
use http::{HeaderMap, header};

use crate::extract::AuthState;
use crate::proxies::{TrustedProxies, canonical};

/// Where a request came from and where it was sent to, after applying the trusted-proxy
/// rules.
///
/// A reverse proxy (nginx, Caddy, Traefik) terminates the client's connection and opens its
/// own: the TCP peer is then the proxy, and the client's address, scheme and host arrive in
/// `Forwarded` (RFC 7239) or `X-Forwarded-For` / `-Proto` / `-Host`. Anyone can send those
/// headers, so they are read **only** when the TCP peer is one of
/// [`TrustedProxies`]; from any other peer they are ignored entirely, never half-trusted.
///
/// The rules, for a request whose peer is trusted:
/// - One family of headers is read, never a mix: the `X-Forwarded-*` headers when any of
///   them is present, else `Forwarded`. nginx, Caddy and Traefik set `X-Forwarded-For`
///   and pass a client's own `Forwarded` header through untouched, so preferring the
///   `X-Forwarded-*` family keeps a client from speaking for itself behind them. A proxy
///   that sets only `Forwarded` must remove the `X-Forwarded-*` headers clients send.
/// - The client address: the `for=` list (every `Forwarded` / `X-Forwarded-For` header,
///   in order) is walked from right to left. Each entry was added by the hop to its right;
///   the walk goes on while the address just found is itself a trusted proxy, and stops at
///   the first untrusted one, which is the client. An entry that is not an IP address
///   (`unknown`, an obfuscated name, garbage) ends the walk at the last good address.
/// - Scheme and host: the values the trusted peer itself sent (the rightmost `proto=` /
///   `host=`, or the last `X-Forwarded-Proto` / `X-Forwarded-Host` value). A scheme other
///   than `http` / `https`, or a host with characters a host cannot hold, is ignored.
///
/// With no trusted proxies (the default) the client is the TCP peer, the scheme is the
/// connection's (`http` unless the request URI says otherwise) and the host is `Host`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The client's address; `None` when the server was not started with connect info
    /// (in-process tests) and no trusted proxy said otherwise.
    pub client: Option<IpAddr>,
    /// `https` or `http`: the scheme the client used.
    pub scheme: &'static str,
    /// The host (and port, if any) the client sent the request to, lowercased; `None`
    /// when the request names none.
    pub host: Option<String>,
}

impl Origin {
    /// Resolve a request's origin from its peer (the `ConnectInfo` of the connection) and
    /// headers.
    pub fn resolve(
        peer: Option<IpAddr>,
        uri: &http::Uri,
        headers: &HeaderMap,
        trusted: &TrustedProxies,
    ) -> Self {
        let mut scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        let mut host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .and_then(clean_host);
        let mut client = peer.map(canonical);
        if let Some(peer) = client
            && trusted.contains(peer)
        {
            let x_forwarded = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"]
                .iter()
                .any(|name| headers.contains_key(*name));
            let forwarded = if x_forwarded {
                from_x_forwarded(headers)
            } else {
                from_forwarded(headers)
            };
            client = Some(walk(peer, &forwarded.chain, trusted));
            if let Some(proto) = forwarded.proto {
                scheme = proto;
            }
            if let Some(forwarded_host) = forwarded.host {
                host = Some(forwarded_host);
            }
        }
        Self {
            client,
            scheme,
            host,
        }
    }

    /// Resolve the origin of a request in an extractor or middleware.
    pub fn of(parts: &Parts, trusted: &TrustedProxies) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Self::resolve(peer, &parts.uri, &parts.headers, trusted)
    }

    /// The origin the request was sent to, as a browser writes it in `Origin`
    /// (`https://app.example`, `http://127.0.0.1:8080`), with the scheme's default port
    /// left out; `None` when the request names no host.
    pub fn own_origin(&self) -> Option<String> {
        let host = self.host.as_deref()?;
        let default_port = if self.scheme == "https" {
            ":443"
        } else {
            ":80"
        };
        let host = host.strip_suffix(default_port).unwrap_or(host);
        Some(format!("{}://{host}", self.scheme))
    }

    /// The client's address as text (`unknown` when there is none), as the session list,
    /// the throttle and the logs use it.
    pub fn client_text(&self) -> String {
        self.client
            .map_or_else(|| "unknown".to_owned(), |addr| addr.to_string())
    }
}

/// What the forwarding headers said.
#[derive(Debug, Default)]
struct Reported {
    /// The `for=` / `X-Forwarded-For` entries, left to right; `None` for an entry that is
    /// not an IP address.
    chain: Vec<Option<IpAddr>>,
    proto: Option<&'static str>,
    host: Option<String>,
}

/// Walk the chain right to left from the trusted `peer`: the client is the first address
/// that is not a trusted proxy.
fn walk(peer: IpAddr, chain: &[Option<IpAddr>], trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer;
    for entry in chain.iter().rev() {
        if !trusted.contains(client) {
            break;
        }
        match entry {
            Some(addr) => client = canonical(*addr),
            None => break,
        }
    }
    client
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

fn from_x_forwarded(headers: &HeaderMap) -> Reported {
    Reported {
        chain: header_values(headers, "x-forwarded-for")
            .filter(|v| !v.is_empty())
            .map(parse_node)
            .collect(),
        proto: header_values(headers, "x-forwarded-proto")
            .last()
            .and_then(clean_proto),
        host: header_values(headers, "x-forwarded-host")
            .last()
            .and_then(clean_host),
    }
}

/// RFC 7239: `Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8::1]:4711"`.
fn from_forwarded(headers: &HeaderMap) -> Reported {
    let mut reported = Reported::default();
    for element in header_values(headers, "forwarded") {
        let mut node = None;
        let mut proto = None;
        let mut host = None;
        for pair in element.split(';') {
            let Some((name, value)) = pair.trim().split_once('=') else {
                continue;
            };
            let value = unquote(value.trim());
            match name.trim().to_ascii_lowercase().as_str() {
                "for" => node = Some(parse_node(value)),
                "proto" => proto = clean_proto(value),
                "host" => host = clean_host(value),
                _ => {}
            }
        }
        // An element without `for=` still stands for a hop.
        reported.chain.push(node.flatten());
        // The rightmost element with a value is the trusted peer's own.
        if proto.is_some() {
            reported.proto = proto;
        }
        if host.is_some() {
            reported.host = host;
        }
    }
    reported
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// An address from a `for=` or `X-Forwarded-For` entry: `192.0.2.1`, `192.0.2.1:4711`,
/// `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:4711`. Anything else is `None`.
fn parse_node(value: &str) -> Option<IpAddr> {
    let value = unquote(value.trim());
    if let Ok(addr) = IpAddr::from_str(value) {
        return Some(addr);
    }
    if let Ok(addr) = SocketAddr::from_str(value) {
        return Some(addr.ip());
    }
    let inner = value.strip_prefix('[')?;
    let (addr, _) = inner.split_once(']')?;
    IpAddr::from_str(addr).ok()
}

fn clean_proto(value: &str) -> Option<&'static str> {
    let value = unquote(value.trim());
    if value.eq_ignore_ascii_case("https") {
        Some("https")
    } else if value.eq_ignore_ascii_case("http") {
        Some("http")
    } else {
        None
    }
}

/// A host as `Host` carries it: letters, digits, `-`, `.`, `:`, `[`, `]`; lowercased.
fn clean_host(value: &str) -> Option<String> {
    let value = unquote(value.trim());
    let ok = !value.is_empty()
        && value.len() <= 255
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'[' | b']' | b'_')
        });
    ok.then(|| value.to_ascii_lowercase())
}

/// The client's address, after the trusted-proxy rules: for throttling, the session list
/// and logs. `unknown` when the server was not started with connect info (in-process
/// tests) and no trusted proxy named one.
///
/// Serve with `into_make_service_with_connect_info::<SocketAddr>()` so that the peer is
/// known.
///
/// # Examples
/// ```
/// use countersign_axum::ClientAddr;
///
/// async fn whoami(ClientAddr(addr): ClientAddr) -> String {
///     format!("you came from {addr}")
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub String);

impl<S> FromRequestParts<S> for ClientAddr
where
    std::sync::Arc<AuthState>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = std::sync::Arc::<AuthState>::from_ref(state);
        Ok(Self(
            Origin::of(parts, &state.trusted_proxies).client_text(),
        ))
    }
}

/// The request's `User-Agent` (empty when absent or not text), for the session list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserAgent(pub String);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ua = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(Self(ua))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn resolve(peer: &str, trusted: &str, pairs: &[(&str, &str)]) -> Origin {
        let trusted: TrustedProxies = trusted.parse().unwrap();
        let uri = http::Uri::from_static("/login");
        Origin::resolve(Some(peer.parse().unwrap()), &uri, &headers(pairs), &trusted)
    }

    #[test]
    fn untrusted_peer_headers_are_ignored_entirely() {
        let o = resolve(
            "192.0.2.9",
            "",
            &[
                ("host", "app.test:8080"),
                ("x-forwarded-for", "203.0.113.7"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.test"),
                ("forwarded", "for=203.0.113.8;proto=https;host=evil.test"),
            ],
        );
        assert_eq!(o.client, Some("192.0.2.9".parse().unwrap()));
        assert_eq!(o.scheme, "http");
        assert_eq!(o.host.as_deref(), Some("app.test:8080"));
        assert_eq!(o.own_origin().as_deref(), Some("http://app.test:8080"));
    }

    #[test]
    fn peer_outside_the_trusted_blocks_is_not_believed() {
        let o = resolve(
            "192.0.2.9",
            "127.0.0.1/32",
            &[
                ("x-forwarded-for", "203.0.113.7"),
                ("x-forwarded-proto", "https"),
            ],
        );
        assert_eq!(o.client, Some("192.0.2.9".parse().unwrap()));
        assert_eq!(o.scheme, "http");
    }

    #[test]
    fn trusted_peer_x_forwarded_headers() {
        let o = resolve(
            "127.0.0.1",
            "127.0.0.1/32",
            &[
                ("host", "127.0.0.1:9000"),
                ("x-forwarded-for", "203.0.113.7"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "App.Test:8443"),
            ],
        );
        assert_eq!(o.client, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(o.scheme, "https");
        assert_eq!(o.own_origin().as_deref(), Some("https://app.test:8443"));
    }

    #[test]
    fn chain_walk_stops_at_first_untrusted_hop() {
        // A client spoofs the leftmost entry; the proxies append the real addresses.
        let o = resolve(
            "127.0.0.1",
            "127.0.0.1/32, 10.0.0.0/8",
            &[("x-forwarded-for", "198.51.100.66, 203.0.113.7, 10.0.0.5")],
        );
        assert_eq!(o.client, Some("203.0.113.7".parse().unwrap()));
        // Several headers count as one list, in order.
        let o = resolve(
            "127.0.0.1",
            "127.0.0.1/32, 10.0.0.0/8",
            &[
                ("x-forwarded-for", "198.51.100.66"),
                ("x-forwarded-for", "203.0.113.7, 10.0.0.5"),
            ],
        );
        assert_eq!(o.client, Some("203.0.113.7".parse().unwrap()));
    }

    #[test]
    fn all_trusted_chain_gives_the_leftmost() {
        let o = resolve(
            "127.0.0.1",
            "127.0.0.0/8",
            &[("x-forwarded-for", "127.0.0.3, 127.0.0.2")],
        );
        assert_eq!(o.client, Some("127.0.0.3".parse().unwrap()));
    }

    #[test]
    fn garbage_entry_ends_the_walk() {
        let o = resolve(
            "127.0.0.1",
            "127.0.0.1/32, 10.0.0.0/8",
            &[("x-forwarded-for", "203.0.113.7, unknown, 10.0.0.5")],
        );
        assert_eq!(o.client, Some("10.0.0.5".parse().unwrap()));
        let o = resolve(
            "127.0.0.1",
            "127.0.0.1",
            &[("x-forwarded-for", "not-an-ip")],
        );
        assert_eq!(o.client, Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn forwarded_header_rfc7239() {
        let o = resolve(
            "::1",
            "::1/128",
            &[(
                "forwarded",
                r#"for=198.51.100.66, for="[2001:db8:cafe::17]:4711";proto=https;host=app.test"#,
            )],
        );
        assert_eq!(o.client, Some("2001:db8:cafe::17".parse().unwrap()));
        assert_eq!(o.scheme, "https");
        assert_eq!(o.host.as_deref(), Some("app.test"));
        assert_eq!(o.own_origin().as_deref(), Some("https://app.test"));
    }

    #[test]
    fn x_forwarded_family_wins_over_a_passed_through_forwarded() {
        // nginx with `$proxy_add_x_forwarded_for` passes the client's own Forwarded on.
        let o = resolve(
            "127.0.0.1",
            "127.0.0.1/32",
            &[
                ("host", "app.test"),
                ("forwarded", "for=198.51.100.66;proto=https;host=evil.test"),
                ("x-forwarded-for", "203.0.113.7"),
            ],
        );
        assert_eq!(o.client, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(
            o.scheme, "http",
            "no mixing: proto comes from the same family"
        );
        assert_eq!(o.host.as_deref(), Some("app.test"));
    }

    #[test]
    fn forwarded_case_and_ports() {
        let o = resolve(
            "127.0.0.1",
            "127.0.0.1",
            &[("forwarded", "For=192.0.2.43:47011;Proto=HTTPS")],
        );
        assert_eq!(o.client, Some("192.0.2.43".parse().unwrap()));
        assert_eq!(o.scheme, "https");
    }

    #[test]
    fn bad_proto_and_host_are_ignored() {
        let o = resolve(
            "127.0.0.1",
            "127.0.0.1",
            &[
                ("host", "a.test"),
                ("x-forwarded-proto", "javascript"),
                ("x-forwarded-host", "evil.test/path"),
            ],
        );
        assert_eq!(o.scheme, "http");
        assert_eq!(o.host.as_deref(), Some("a.test"));
    }

    #[test]
    fn ipv4_mapped_peer_matches_ipv4_block() {
        let o = resolve(
            "::ffff:127.0.0.1",
            "127.0.0.1/32",
            &[("x-forwarded-for", "203.0.113.7")],
        );
        assert_eq!(o.client, Some("203.0.113.7".parse().unwrap()));
    }

    #[test]
    fn default_ports_are_left_out_of_the_origin() {
        let o = resolve("192.0.2.1", "", &[("host", "app.test:80")]);
        assert_eq!(o.own_origin().as_deref(), Some("http://app.test"));
        let o = resolve("192.0.2.1", "", &[]);
        assert_eq!(o.own_origin(), None);
    }
}
