//! Which peers are trusted proxies, whose forwarding headers are believed ([`Origin`]
//! applies them).
//!
//! [`Origin`]: crate::Origin

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// The peers whose forwarding headers are believed: a list of CIDR blocks.
///
/// # Examples
/// ```
/// use countersign_axum::TrustedProxies;
///
/// let proxies: TrustedProxies = "127.0.0.1/32, 10.0.0.0/8, ::1".parse().unwrap();
/// assert!(proxies.contains("10.1.2.3".parse().unwrap()));
/// assert!(!proxies.contains("192.0.2.1".parse().unwrap()));
/// assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// A trusted-proxy entry that is neither an IP address nor a CIDR block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or a CIDR block (such as 127.0.0.1/32 or 10.0.0.0/8)")]
pub struct BadProxy(pub String);

impl TrustedProxies {
    /// No trusted proxies: forwarding headers are never read.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether any proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `addr` is a trusted proxy. An IPv4-mapped IPv6 address counts as its IPv4
    /// address.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The blocks, as configured.
    pub fn blocks(&self) -> &[IpNet] {
        &self.0
    }

    /// Parse each entry (an address or a CIDR block).
    ///
    /// # Errors
    /// [`BadProxy`] naming the first entry that is neither.
    pub fn parse_all<I, S>(entries: I) -> Result<Self, BadProxy>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut blocks = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            let block = match IpNet::from_str(entry) {
                Ok(net) => net.trunc(),
                Err(_) => IpAddr::from_str(entry)
                    .map(IpNet::from)
                    .map_err(|_| BadProxy(entry.to_owned()))?,
            };
            blocks.push(block);
        }
        Ok(Self(blocks))
    }
}

impl FromStr for TrustedProxies {
    type Err = BadProxy;

    /// A comma-separated list, as in `COUNTERSIGN_TRUSTED_PROXIES`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_all(s.split(','))
    }
}

/// `addr`, an IPv4-mapped IPv6 address as its IPv4 address.
pub(crate) fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_list_parsing() {
        let p: TrustedProxies = "127.0.0.1/32,10.0.0.0/8, ::1 ,fd00::/8".parse().unwrap();
        assert_eq!(p.blocks().len(), 4);
        assert!(p.contains("fd12::1".parse().unwrap()));
        assert_eq!(
            "127.0.0.1/32, nope".parse::<TrustedProxies>(),
            Err(BadProxy("nope".to_owned()))
        );
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        // Host bits are cleared, not refused.
        let p: TrustedProxies = "10.1.2.3/8".parse().unwrap();
        assert!(p.contains("10.200.0.1".parse().unwrap()));
    }
}
