//! What the relay has done, for metrics: counters shared by the listening
//! sockets and the allocations, read whenever they are asked for.

use std::sync::atomic::{AtomicU64, Ordering};

/// How clients reach the relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ClientTransport {
    /// UDP.
    #[default]
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl ClientTransport {
    /// Every transport, in a fixed order.
    pub const ALL: [ClientTransport; 3] = [Self::Udp, Self::Tcp, Self::Tls];

    /// Its name in metrics and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The relay's counters; all only grow, but `allocations`.
#[derive(Debug, Default)]
pub struct RelayStats {
    allocations: AtomicU64,
    allocated: [AtomicU64; 3],
    refused_user_quota: AtomicU64,
    refused_address_quota: AtomicU64,
    refused_total_quota: AtomicU64,
    permissions_refused: AtomicU64,
    bytes_to_peers: AtomicU64,
    bytes_from_peers: AtomicU64,
    dropped_over_budget: AtomicU64,
    auth_failures: AtomicU64,
}

/// A copy of [`RelayStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelaySnapshot {
    /// Allocations open now.
    pub allocations: u64,
    /// Allocations made, by the transport the client used.
    pub allocated: [(ClientTransport, u64); 3],
    /// Allocations refused: the member held its share.
    pub refused_user_quota: u64,
    /// Allocations refused: the client's address held its share.
    pub refused_address_quota: u64,
    /// Allocations refused: the relay held `--turn-max-allocations`.
    pub refused_total_quota: u64,
    /// Permissions and channel bindings refused for a non-public peer.
    pub permissions_refused: u64,
    /// Bytes relayed to peers.
    pub bytes_to_peers: u64,
    /// Bytes relayed from peers.
    pub bytes_from_peers: u64,
    /// Datagrams dropped over an allocation's bandwidth budget.
    pub dropped_over_budget: u64,
    /// Requests with credentials that were refused.
    pub auth_failures: u64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl RelayStats {
    pub(crate) fn allocation_opened(&self, transport: ClientTransport) {
        add(&self.allocations, 1);
        add(&self.allocated[transport.index()], 1);
    }

    pub(crate) fn allocation_closed(&self) {
        self.allocations.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn refused_user_quota(&self) {
        add(&self.refused_user_quota, 1);
    }

    pub(crate) fn refused_address_quota(&self) {
        add(&self.refused_address_quota, 1);
    }

    pub(crate) fn refused_total_quota(&self) {
        add(&self.refused_total_quota, 1);
    }

    pub(crate) fn permission_refused(&self) {
        add(&self.permissions_refused, 1);
    }

    pub(crate) fn sent_to_peer(&self, bytes: usize) {
        add(&self.bytes_to_peers, bytes as u64);
    }

    pub(crate) fn received_from_peer(&self, bytes: usize) {
        add(&self.bytes_from_peers, bytes as u64);
    }

    pub(crate) fn over_budget(&self) {
        add(&self.dropped_over_budget, 1);
    }

    pub(crate) fn auth_failure(&self) {
        add(&self.auth_failures, 1);
    }

    /// The counters now.
    pub fn snapshot(&self) -> RelaySnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RelaySnapshot {
            allocations: get(&self.allocations),
            allocated: ClientTransport::ALL.map(|t| (t, get(&self.allocated[t.index()]))),
            refused_user_quota: get(&self.refused_user_quota),
            refused_address_quota: get(&self.refused_address_quota),
            refused_total_quota: get(&self.refused_total_quota),
            permissions_refused: get(&self.permissions_refused),
            bytes_to_peers: get(&self.bytes_to_peers),
            bytes_from_peers: get(&self.bytes_from_peers),
            dropped_over_budget: get(&self.dropped_over_budget),
            auth_failures: get(&self.auth_failures),
        }
    }
}
