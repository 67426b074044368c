//! The flags of the PeerJS endpoint, named after `peer` 1.0.2's options.

use std::time::Duration;

use clap::Args;
use peerchat_rooms::HubConfig;

/// Flags of the PeerJS endpoint (`peerchat serve --peerjs`).
#[derive(Debug, Clone, Args)]
pub struct PeerjsArgs {
    /// Also serve the PeerJS server protocol under /peerjs, so that apps
    /// built on the `peerjs` client can use this server (`path: '/peerjs'`).
    #[arg(long, env = "PEERCHAT_PEERJS")]
    pub peerjs: bool,

    /// The key PeerJS clients connect with (their `key` option).
    #[arg(long, env = "PEERCHAT_PEERJS_KEY", default_value = "peerjs")]
    pub peerjs_key: String,

    /// How long signals for a PeerJS id nobody holds wait for it before
    /// their senders are told the peer is unavailable (EXPIRE).
    #[arg(long, env = "PEERCHAT_PEERJS_EXPIRE_TIMEOUT", default_value = "5s",
          value_parser = humantime::parse_duration)]
    pub peerjs_expire_timeout: Duration,

    /// A PeerJS client that sends no HEARTBEAT for this long is
    /// disconnected (the client sends one every 5 s).
    #[arg(long, env = "PEERCHAT_PEERJS_ALIVE_TIMEOUT", default_value = "60s",
          value_parser = humantime::parse_duration)]
    pub peerjs_alive_timeout: Duration,

    /// Most PeerJS ids registered at once.
    #[arg(long, env = "PEERCHAT_PEERJS_CONCURRENT_LIMIT", default_value_t = 5000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub peerjs_concurrent_limit: u32,

    /// Let anyone list the PeerJS ids registered (GET /peerjs/KEY/peers).
    #[arg(long, env = "PEERCHAT_PEERJS_DISCOVERY")]
    pub peerjs_discovery: bool,
}

/// A PeerJS setting that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum PeerjsConfigError {
    /// An empty key.
    #[error("--peerjs-key must not be empty")]
    EmptyKey,
    /// A zero timeout.
    #[error("--{0} must be longer than zero")]
    ZeroDuration(&'static str),
}

impl PeerjsArgs {
    /// The PeerJS endpoint's settings, or `None` when it is off. Its
    /// connections have the same rate limits as `/ws`'s.
    pub fn into_config(
        self,
        hub: &HubConfig,
    ) -> Result<Option<peerchat_peerjs::Config>, PeerjsConfigError> {
        if !self.peerjs {
            return Ok(None);
        }
        if self.peerjs_key.is_empty() {
            return Err(PeerjsConfigError::EmptyKey);
        }
        for (name, d) in [
            ("peerjs-expire-timeout", self.peerjs_expire_timeout),
            ("peerjs-alive-timeout", self.peerjs_alive_timeout),
        ] {
            if d.is_zero() {
                return Err(PeerjsConfigError::ZeroDuration(name));
            }
        }
        Ok(Some(peerchat_peerjs::Config {
            key: self.peerjs_key,
            expire_timeout: self.peerjs_expire_timeout,
            alive_timeout: self.peerjs_alive_timeout,
            concurrent_limit: self.peerjs_concurrent_limit as usize,
            discovery: self.peerjs_discovery,
            rate_per_sec: hub.rate_per_sec,
            rate_burst: hub.rate_burst,
            byte_rate_per_sec: hub.byte_rate_per_sec,
            byte_burst: hub.byte_burst,
            send_queue_bytes: hub.send_queue_bytes,
            ..peerchat_peerjs::Config::default()
        }))
    }
}
