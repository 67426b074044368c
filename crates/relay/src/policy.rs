//! Which peer addresses the relay may send to and receive from.
//!
//! A TURN relay that forwards to any address lets anyone on the internet
//! reach the relay host's loopback and private networks (coturn's
//! CVE-2020-26262 and the bypasses after it used IPv6 encodings of such
//! addresses). By default peerchat's relay talks only to public unicast
//! addresses, checking every IPv6 form that embeds an IPv4 address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The relay's peer address policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerPolicy {
    /// Also allow loopback, private, link-local and unique-local peers (for
    /// a relay on a LAN, and for tests on loopback). Unspecified, multicast
    /// and reserved addresses stay refused.
    pub allow_private: bool,
}

impl PeerPolicy {
    /// Whether the relay may exchange packets with `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        match classify(ip) {
            Class::Public => true,
            Class::Private => self.allow_private,
            Class::Never => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Globally routable unicast.
    Public,
    /// Loopback, RFC 1918, CGNAT, link-local, unique-local: this host or
    /// its networks.
    Private,
    /// Unspecified, multicast, broadcast, reserved, documentation: never a
    /// real peer.
    Never,
}

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let [a, b, c, _] = ip.octets();
    let private = a == 127 // loopback
        || a == 10
        || (a == 172 && (16..=31).contains(&b))
        || (a == 192 && b == 168)
        || (a == 100 && (64..=127).contains(&b)) // CGNAT, RFC 6598
        || (a == 169 && b == 254); // link-local
    let never = a == 0 // "this network", including 0.0.0.0
        || a >= 224 // multicast, reserved 240/4, broadcast
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 192 && b == 88 && c == 99); // 6to4 relay anycast
    if never {
        Class::Never
    } else if private {
        Class::Private
    } else {
        Class::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let s = ip.segments();
    if ip.is_loopback() {
        return Class::Private;
    }
    if ip.is_unspecified() || s[0] & 0xff00 == 0xff00 {
        return Class::Never; // unspecified, multicast
    }
    // Forms that carry an IPv4 address are judged by that address.
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    if s[0] & 0xfe00 == 0xfc00 // unique local fc00::/7
        || s[0] & 0xffc0 == 0xfe80 // link-local fe80::/10
        || s[0] & 0xffc0 == 0xfec0
    // site-local fec0::/10 (deprecated)
    {
        return Class::Private;
    }
    let never = s[0..5] == [0, 0, 0, 0, 0] // IPv4-compatible ::/80 and others in ::/16
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001) // local-use NAT64 64:ff9b:1::/48
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0x0000) // Teredo: hides an IPv4 address
        || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking
        || (s[0] == 0x2001 && (0x0010..=0x002f).contains(&s[1])) // ORCHID
        || s[0] == 0x3fff; // documentation 3fff::/20
    if never { Class::Never } else { Class::Public }
}

/// The IPv4 address inside an IPv6 address that encodes one: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let last = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if s[0..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff {
        return Some(last);
    }
    if s[0..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
        return Some(last);
    }
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return Some(last);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permits(policy: PeerPolicy, ip: &str) -> bool {
        policy.permits(ip.parse().unwrap())
    }

    const STRICT: PeerPolicy = PeerPolicy {
        allow_private: false,
    };
    const LAN: PeerPolicy = PeerPolicy {
        allow_private: true,
    };

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.167.1.1",
            "223.255.255.254",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(permits(STRICT, ip), "{ip}");
            assert!(permits(LAN, ip), "{ip}");
        }
    }

    #[test]
    fn private_ranges_need_the_opt_in() {
        for ip in [
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
        ] {
            assert!(!permits(STRICT, ip), "{ip}");
            assert!(permits(LAN, ip), "{ip}");
        }
    }

    #[test]
    fn ipv6_encodings_of_private_ipv4_are_caught() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:192.168.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0:127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2002:c0a8:101::1",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(!permits(STRICT, ip), "{ip}");
        }
    }

    #[test]
    fn never_real_peers_are_refused_even_on_a_lan() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "198.18.0.1",
            "192.88.99.1",
            "::",
            "::7f00:1",
            "::a00:1",
            "ff02::1",
            "ff05::1:3",
            "2001:db8::1",
            "2001:0:4136:e378::1",
            "64:ff9b:1::a00:1",
            "100::1",
            "2001:2::1",
            "2001:10::1",
            "::ffff:0.0.0.0",
            "::ffff:224.0.0.1",
            "64:ff9b::e000:1",
            "2002:e000:1::1",
        ] {
            assert!(!permits(STRICT, ip), "{ip}");
            assert!(!permits(LAN, ip), "{ip}");
        }
    }
}
