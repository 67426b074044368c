//! The client's address behind a reverse proxy: taken from `Forwarded`
//! (RFC 7239) or `X-Forwarded-For` only when the connection comes from a
//! proxy named with `--trusted-proxy`, since anyone else can write them.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// An address or a network of them (`203.0.113.0/24`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// Not an address or network.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an IP address or network (like 10.0.0.1 or 10.0.0.0/8)")]
pub struct BadNet(String);

impl std::str::FromStr for IpNet {
    type Err = BadNet;

    fn from_str(s: &str) -> Result<Self, BadNet> {
        let bad = || BadNet(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }
}

impl IpNet {
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let shift = 32 - u32::from(self.prefix);
                shift == 32 || net.to_bits() >> shift == ip.to_bits() >> shift
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let shift = 128 - u32::from(self.prefix);
                shift == 128 || net.to_bits() >> shift == ip.to_bits() >> shift
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address as IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The address a request comes from: `peer`, or when `peer` is a trusted
/// proxy, the nearest address in the forwarding headers that is not one
/// (the proxies' own entries are skipped from the right). A proxy that
/// names no client, or an entry that is not an address, leaves `peer`.
pub(crate) fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return canonical(peer);
    }
    let hops: Vec<Option<IpAddr>> = if headers.contains_key("forwarded") {
        headers
            .get_all("forwarded")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(forwarded_for)
            .collect()
    } else {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|hop| parse_node(hop.trim()))
            .collect()
    };
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => continue,
            Some(ip) => return canonical(ip),
            None => break,
        }
    }
    canonical(peer)
}

/// The `for=` of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_node(value.trim().trim_matches('"')))
            .flatten()
    })
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5`, `[::1]`,
/// `[::1]:5`, `::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    node.rsplit_once(':')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()];
        let xff = headers(&[("x-forwarded-for", "198.51.100.9, 203.0.113.4")]);
        // From a stranger: its own address, whatever it writes.
        assert_eq!(
            client_addr(ip("192.0.2.1"), &xff, &trusted),
            ip("192.0.2.1")
        );
        // From a proxy: the nearest untrusted hop.
        assert_eq!(
            client_addr(ip("10.1.2.3"), &xff, &trusted),
            ip("203.0.113.4")
        );
        let chain = headers(&[("x-forwarded-for", "203.0.113.4, 10.9.9.9")]);
        assert_eq!(client_addr(ip("::1"), &chain, &trusted), ip("203.0.113.4"));
        let fwd = headers(&[
            ("forwarded", "for=192.0.2.60;proto=http"),
            ("forwarded", "For=\"[2001:db8:cafe::17]:4711\""),
        ]);
        assert_eq!(
            client_addr(ip("10.0.0.1"), &fwd, &trusted),
            ip("2001:db8:cafe::17")
        );
        // `Forwarded` wins over `X-Forwarded-For`; an obfuscated or broken
        // entry leaves the proxy's address.
        let both = headers(&[
            ("forwarded", "for=unknown"),
            ("x-forwarded-for", "192.0.2.1"),
        ]);
        assert_eq!(client_addr(ip("10.0.0.1"), &both, &trusted), ip("10.0.0.1"));
        assert_eq!(
            client_addr(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_addr(ip("::ffff:192.0.2.7"), &HeaderMap::new(), &[]),
            ip("192.0.2.7")
        );
    }

    #[test]
    fn networks() {
        let net: IpNet = "203.0.113.0/24".parse().unwrap();
        assert!(net.contains(ip("203.0.113.200")));
        assert!(net.contains(ip("::ffff:203.0.113.1")));
        assert!(!net.contains(ip("203.0.114.1")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("1.2.3.4")));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("nope".parse::<IpNet>().is_err());
    }
}
