//! Per-address limits, as a sans-IO table: how many connections each
//! client address holds, and how fast it may open WebSockets. Addresses
//! count by network: an IPv4 address alone (/32), an IPv6 address by its
//! /64 (one household or host typically has a whole /64).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// A client's network: an IPv4 address, or the first 64 bits of an IPv6
/// one (IPv4-mapped IPv6 addresses count as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Network {
    V4(u32),
    V6(u64),
}

impl Network {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4.to_bits()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.to_bits()),
                None => Self::V6((v6.to_bits() >> 64) as u64),
            },
        }
    }
}

/// The limits of [`Addresses`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Most connections open at once from one network; 0: no limit.
    pub(crate) connections: u32,
    /// WebSockets one network may open per second, on average.
    pub(crate) joins_per_sec: f64,
    /// WebSockets one network may open in a burst.
    pub(crate) join_burst: f64,
}

#[derive(Debug)]
struct Entry {
    connections: u32,
    tokens: f64,
    last: Instant,
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    /// It holds its share of connections.
    Connections,
    /// It opened WebSockets too fast.
    JoinRate,
}

/// Connections and join budgets per client network. Bounded: a network
/// has an entry only while it holds a connection or its join budget is not
/// yet full again; the others are swept out as the table grows.
#[derive(Debug)]
pub(crate) struct Addresses {
    limits: Limits,
    entries: HashMap<Network, Entry>,
    /// Sweep when the table grows past this.
    sweep_at: usize,
}

const MIN_SWEEP: usize = 1024;

impl Addresses {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            entries: HashMap::new(),
            sweep_at: MIN_SWEEP,
        }
    }

    fn entry(&mut self, net: Network, now: Instant) -> &mut Entry {
        if self.entries.len() >= self.sweep_at {
            self.sweep(now);
        }
        let burst = self.limits.join_burst;
        let rate = self.limits.joins_per_sec;
        let entry = self.entries.entry(net).or_insert(Entry {
            connections: 0,
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(entry.last).as_secs_f64();
        entry.tokens = (entry.tokens + elapsed * rate).min(burst);
        entry.last = now;
        entry
    }

    /// Drops the entries that hold nothing.
    fn sweep(&mut self, now: Instant) {
        let (rate, burst) = (self.limits.joins_per_sec, self.limits.join_burst);
        self.entries.retain(|_, e| {
            let elapsed = now.saturating_duration_since(e.last).as_secs_f64();
            e.connections > 0 || e.tokens + elapsed * rate < burst
        });
        self.sweep_at = (self.entries.len() * 2).max(MIN_SWEEP);
    }

    /// A connection from `net` opens, unless it holds its share.
    pub(crate) fn open(&mut self, net: Network, now: Instant) -> Result<(), Over> {
        let cap = self.limits.connections;
        let entry = self.entry(net, now);
        if cap > 0 && entry.connections >= cap {
            return Err(Over::Connections);
        }
        entry.connections += 1;
        Ok(())
    }

    /// A connection from `net` that [`Addresses::open`] let in closed.
    pub(crate) fn close(&mut self, net: Network) {
        if let Some(entry) = self.entries.get_mut(&net) {
            entry.connections = entry.connections.saturating_sub(1);
        }
    }

    /// `net` opens a WebSocket (a membership), unless it does so too fast.
    pub(crate) fn join(&mut self, net: Network, now: Instant) -> Result<(), Over> {
        let entry = self.entry(net, now);
        if entry.tokens >= 1.0 {
            entry.tokens -= 1.0;
            Ok(())
        } else {
            Err(Over::JoinRate)
        }
    }

    /// Networks in the table.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn net(ip: &str) -> Network {
        Network::of(ip.parse().unwrap())
    }

    const LIMITS: Limits = Limits {
        connections: 3,
        joins_per_sec: 2.0,
        join_burst: 4.0,
    };

    #[test]
    fn an_address_holds_its_share_of_connections_and_no_more() {
        let now = Instant::now();
        let mut a = Addresses::new(LIMITS);
        for _ in 0..3 {
            a.open(net("203.0.113.5"), now).unwrap();
        }
        assert_eq!(a.open(net("203.0.113.5"), now), Err(Over::Connections));
        // The same address written as IPv4-mapped IPv6 is the same.
        assert_eq!(
            a.open(net("::ffff:203.0.113.5"), now),
            Err(Over::Connections)
        );
        // Its neighbour is another client.
        a.open(net("203.0.113.6"), now).unwrap();
        a.close(net("203.0.113.5"));
        a.open(net("203.0.113.5"), now).unwrap();
    }

    #[test]
    fn ipv6_counts_by_its_first_64_bits() {
        let now = Instant::now();
        let mut a = Addresses::new(LIMITS);
        for ip in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
            a.open(net(ip), now).unwrap();
        }
        assert_eq!(a.open(net("2001:db8:1:2::77"), now), Err(Over::Connections));
        a.open(net("2001:db8:1:3::1"), now).unwrap();
    }

    #[test]
    fn joins_are_rate_limited_per_address() {
        let now = Instant::now();
        let mut a = Addresses::new(LIMITS);
        for _ in 0..4 {
            a.join(net("198.51.100.1"), now).unwrap();
        }
        assert_eq!(a.join(net("198.51.100.1"), now), Err(Over::JoinRate));
        a.join(net("198.51.100.2"), now).unwrap();
        let later = now + Duration::from_millis(500);
        a.join(net("198.51.100.1"), later).unwrap();
        assert_eq!(a.join(net("198.51.100.1"), later), Err(Over::JoinRate));
    }

    #[test]
    fn the_table_forgets_addresses_that_hold_nothing() {
        let mut now = Instant::now();
        let mut a = Addresses::new(LIMITS);
        a.open(net("192.0.2.1"), now).unwrap();
        for i in 0..100_000u32 {
            let ip = IpAddr::V4((0x0a00_0000 + i).into());
            a.join(Network::of(ip), now).unwrap();
            now += Duration::from_millis(1);
        }
        // Every address but the one holding a connection, and those whose
        // budget has not refilled (2 s at most), is gone.
        assert!(a.len() <= 2 * (MIN_SWEEP.max(2_001)), "{}", a.len());
        assert_eq!(a.open(net("192.0.2.1"), now), Ok(()));
        assert_eq!(a.entries[&net("192.0.2.1")].connections, 2);
    }
}
