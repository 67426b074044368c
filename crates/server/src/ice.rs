//! ICE servers for members: the STUN/TURN URLs given with `--ice-server`,
//! plus TURN with fresh per-member credentials (from the embedded relay or
//! an external TURN server), made only when someone joins a room.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use peerchat_protocol::signaling::IceServer;
use peerchat_relay::{Relay, RelayConfig, RelayError, Secret};
use peerchat_rooms::IceProvider;

use crate::config::{Config, TurnServer};

/// The ICE servers of one server: some fixed, and TURN with credentials
/// issued to each member.
#[derive(Debug)]
pub struct MemberIce {
    fixed: Vec<IceServer>,
    turn: Option<TurnCredentials>,
}

#[derive(Debug)]
struct TurnCredentials {
    urls: Vec<String>,
    secret: Secret,
    ttl: Duration,
}

impl IceProvider for MemberIce {
    fn ice_servers(&self, peer_id: &str) -> Vec<IceServer> {
        let mut servers = self.fixed.clone();
        if let Some(turn) = &self.turn {
            let (username, credential) = turn.secret.issue(peer_id, turn.ttl, SystemTime::now());
            servers.push(IceServer {
                urls: turn.urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        servers
    }

    /// Members get fresh credentials halfway through the life of the last.
    fn refresh_every(&self) -> Option<Duration> {
        self.turn.as_ref().map(|turn| turn.ttl / 2)
    }
}

/// Starts the embedded relay if the configuration asks for one, and sets
/// up the ICE servers members get. `http` is the address the HTTP server
/// listens on; the relay listens on the same IP.
pub async fn start_relay(
    config: &mut Config,
    http: SocketAddr,
) -> Result<Option<Relay>, RelayError> {
    let mut fixed = config.ice_servers.clone();
    let Some(turn) = config.turn.clone() else {
        return Ok(None);
    };
    let (relay, urls) = match turn.server {
        TurnServer::External { urls } => (None, urls),
        TurnServer::Embedded {
            port,
            public_ip,
            policy,
            max_allocations_per_user,
            max_allocations_per_address,
            max_allocations,
            bandwidth,
        } => {
            let public_ip = public_ip.unwrap_or_else(|| advertised_ip(http.ip()));
            let relay = Relay::start(RelayConfig {
                listen: SocketAddr::new(http.ip(), port),
                public_ip,
                secret: turn.secret.clone(),
                policy,
                max_allocations_per_user,
                max_allocations_per_address,
                max_allocations,
                bandwidth_per_allocation: bandwidth,
            })
            .await?;
            let host = match public_ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            };
            let port = relay.local_addr().port();
            fixed.push(IceServer {
                urls: vec![format!("stun:{host}:{port}")],
                username: None,
                credential: None,
            });
            (
                Some(relay),
                vec![format!("turn:{host}:{port}?transport=udp")],
            )
        }
    };
    config.hub.ice = Arc::new(MemberIce {
        fixed,
        turn: Some(TurnCredentials {
            urls,
            secret: turn.secret,
            ttl: turn.ttl,
        }),
    });
    Ok(relay)
}

/// The address to advertise for a relay listening on `listen`: itself when
/// it is a specific address, else the address of the interface that routes
/// to the internet (found without sending anything), else loopback.
fn advertised_ip(listen: IpAddr) -> IpAddr {
    if !listen.is_unspecified() {
        return listen;
    }
    let routed = UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:3478").map(|()| s))
        .and_then(|s| s.local_addr());
    match routed {
        Ok(addr) => {
            tracing::info!(ip = %addr.ip(), "relay address detected; set --public-ip if peers reach this host at another address");
            addr.ip()
        }
        Err(_) => {
            tracing::warn!(
                "no route to the internet: the relay advertises 127.0.0.1; set --public-ip"
            );
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
    }
}
