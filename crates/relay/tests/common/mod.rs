//! A relay on loopback for the tests that flood it.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use peerchat_relay::{PeerPolicy, Relay, RelayConfig, Secret};
use tokio::net::UdpSocket;

/// A relay with small quotas, and a UDP socket connected to it.
pub async fn relay_and_socket() -> (Relay, UdpSocket) {
    let relay = Relay::start(RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        secret: Secret::random(),
        policy: PeerPolicy::default(),
        max_allocations_per_user: 4,
        max_allocations_per_address: 16,
        max_allocations: 16,
        bandwidth_per_allocation: 1 << 20,
    })
    .await
    .unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(relay.local_addr()).await.unwrap();
    (relay, socket)
}
