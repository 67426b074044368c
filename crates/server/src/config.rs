//! Settings of `peerchat serve`, as command-line flags and environment
//! variables.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use peerchat_mailbox::MailboxConfig;
use peerchat_protocol::signaling::IceServer;
use peerchat_relay::{PeerPolicy, Secret};
use peerchat_rooms::HubConfig;

/// Flags of `peerchat serve`. Every flag can also be set through the
/// environment variable named in its help.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "PEERCHAT_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Largest WebSocket message a client may send, in bytes.
    #[arg(long, env = "PEERCHAT_MAX_MESSAGE_SIZE", default_value_t = 64 * 1024,
          value_parser = clap::value_parser!(u32).range(1024..=16 * 1024 * 1024))]
    pub max_message_size: u32,

    /// Read buffer of each WebSocket's parser, in bytes: every connection
    /// holds one from the start, and a larger message grows it (the socket
    /// itself is read in larger chunks, through a buffer shared by all
    /// connections, and written in batches of up to 16 KiB, through a buffer
    /// held only while a batch is written).
    #[arg(long, env = "PEERCHAT_WS_BUFFER_SIZE", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(512..=1024 * 1024))]
    pub ws_buffer_size: u32,

    /// Bytes queued for one client (each message counts 64 bytes more than
    /// its text) before signals to it are refused to their senders with
    /// `peer_busy`; one sender may fill a quarter of it. The server's own
    /// messages may go a quarter past it (and one largest message past
    /// that); a client whose queue overflows even so does not read, and is
    /// disconnected with `slow_consumer`.
    #[arg(long, env = "PEERCHAT_SEND_QUEUE_BYTES", default_value_t = HubConfig::DEFAULT_SEND_QUEUE_BYTES,
          value_parser = clap::value_parser!(u32).range(4096..=64 * 1024 * 1024))]
    pub send_queue_bytes: u32,

    /// Most members in one room; a full room answers `room_full`.
    #[arg(long, env = "PEERCHAT_ROOM_CAPACITY", default_value_t = HubConfig::DEFAULT_ROOM_CAPACITY)]
    pub room_capacity: u32,

    /// Messages per second one connection may send on average.
    #[arg(long, env = "PEERCHAT_RATE_LIMIT", default_value_t = HubConfig::DEFAULT_RATE_PER_SEC,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit: u32,

    /// Messages one connection may send in a burst above the average rate.
    #[arg(long, env = "PEERCHAT_RATE_BURST", default_value_t = HubConfig::DEFAULT_RATE_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_burst: u32,

    /// Bytes per second one connection may send on average (so that nobody
    /// can flood another member with large signals).
    #[arg(long, env = "PEERCHAT_RATE_LIMIT_BYTES", default_value_t = HubConfig::DEFAULT_BYTE_RATE_PER_SEC,
          value_parser = clap::value_parser!(u32).range(1024..))]
    pub rate_limit_bytes: u32,

    /// Bytes one connection may send in a burst above the average rate.
    #[arg(long, env = "PEERCHAT_RATE_BURST_BYTES", default_value_t = HubConfig::DEFAULT_BYTE_BURST,
          value_parser = clap::value_parser!(u32).range(1024..))]
    pub rate_burst_bytes: u32,

    /// Most simultaneous connections (HTTP and WebSocket); more are refused.
    #[arg(long, env = "PEERCHAT_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Most connections open at once from one client address (IPv6: one
    /// /64); 0 for no limit. Loopback clients are not limited: behind a
    /// proxy on this host, name it with --trusted-proxy so that its clients
    /// are counted one by one.
    #[arg(
        long,
        env = "PEERCHAT_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 32
    )]
    pub max_connections_per_address: u32,

    /// WebSockets one client address (IPv6: one /64) may open per second,
    /// on average.
    #[arg(long, env = "PEERCHAT_JOIN_RATE_PER_ADDRESS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub join_rate_per_address: u32,

    /// WebSockets one client address may open in a burst.
    #[arg(long, env = "PEERCHAT_JOIN_BURST_PER_ADDRESS", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub join_burst_per_address: u32,

    /// Reverse proxies (addresses or networks, like `10.0.0.0/8`) whose
    /// `Forwarded` or `X-Forwarded-For` header names the client; from
    /// anyone else those headers are ignored. Repeat the flag or separate
    /// with commas.
    #[arg(
        long = "trusted-proxy",
        env = "PEERCHAT_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<crate::IpNet>,

    /// Web origins (like `https://chat.example.org`) whose pages may open a
    /// WebSocket, besides the server's own origin; `*` allows any. Repeat
    /// the flag or separate with commas.
    #[arg(
        long = "allowed-origin",
        env = "PEERCHAT_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Host names (as in the `Host` header) this server answers to, besides
    /// IP addresses, `localhost` and names under `.localhost`, which always
    /// pass: the name people reach it by, like `chat.example.org`. A name
    /// starting with a dot allows the name and every name under it; `*`
    /// allows any. Other names are refused with 421, so that a web page
    /// cannot reach this server through a name it rebinds to its address.
    /// Repeat the flag or separate with commas.
    #[arg(
        long = "allowed-host",
        env = "PEERCHAT_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// How often the server pings each WebSocket client.
    #[arg(long, env = "PEERCHAT_PING_INTERVAL", default_value = "20s", value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,

    /// A client that sends nothing (not even a pong) for this long is
    /// considered dead and disconnected.
    #[arg(long, env = "PEERCHAT_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// Time allowed for a client to send its HTTP request headers.
    #[arg(long, env = "PEERCHAT_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,

    /// Time allowed between opening the WebSocket and joining a room.
    #[arg(long, env = "PEERCHAT_JOIN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub join_timeout: Duration,

    /// How long a member that joined with a key stays in its room, away,
    /// after its connection was lost, so that it can come back unnoticed;
    /// `0s` turns this off (at most 1h).
    #[arg(long, env = "PEERCHAT_RESUME_GRACE", default_value = "20s", value_parser = humantime::parse_duration)]
    pub resume_grace: Duration,

    /// A STUN or TURN URL handed to clients for their peer connections
    /// (none by default). Repeat the flag or separate with commas.
    #[arg(
        long = "ice-server",
        env = "PEERCHAT_ICE_SERVERS",
        value_delimiter = ','
    )]
    pub ice_servers: Vec<String>,

    /// Username for the `turn:`/`turns:` URLs given with --ice-server.
    #[arg(long, env = "PEERCHAT_ICE_USERNAME", requires = "ice_credential")]
    pub ice_username: Option<String>,

    /// Password for the `turn:`/`turns:` URLs given with --ice-server.
    #[arg(long, env = "PEERCHAT_ICE_CREDENTIAL", requires = "ice_username")]
    pub ice_credential: Option<String>,

    /// UDP port of the embedded STUN/TURN relay; 0 picks a free port.
    #[arg(long, env = "PEERCHAT_TURN_PORT", default_value_t = 3478)]
    pub turn_port: u16,

    /// Do not run the embedded STUN/TURN relay.
    #[arg(long, env = "PEERCHAT_NO_TURN", conflicts_with = "turn_urls")]
    pub no_turn: bool,

    /// The secret for TURN credentials (TURN REST form). Random at each
    /// start unless given; give it to share a relay with several servers or
    /// with an external TURN server.
    #[arg(long, env = "PEERCHAT_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,

    /// Use this external TURN server (coturn with `use-auth-secret` and
    /// `static-auth-secret` equal to --turn-secret) instead of the embedded
    /// relay, like `turn:turn.example.org:3478`. Repeat for several URLs.
    #[arg(
        long = "turn-url",
        env = "PEERCHAT_TURN_URLS",
        value_delimiter = ',',
        requires = "turn_secret"
    )]
    pub turn_urls: Vec<String>,

    /// How long TURN credentials stay valid for new relay allocations (at
    /// least 1m, at most 1h); members get fresh ones over their WebSocket
    /// halfway through, for as long as they are in a room. An allocation
    /// made with them may go on being refreshed for 12 hours past that.
    #[arg(long, env = "PEERCHAT_TURN_TTL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub turn_ttl: Duration,

    /// The address peers reach the relay at, when the server is behind NAT.
    /// Without it: the --addr address, or when that is unspecified
    /// (0.0.0.0), the address of the interface with the default route.
    #[arg(long, env = "PEERCHAT_PUBLIC_IP")]
    pub public_ip: Option<IpAddr>,

    /// Let the relay reach loopback, private (RFC 1918), CGNAT, link-local
    /// and unique-local addresses: for a relay serving a LAN, and for tests.
    /// Off by default, so the relay cannot be used to reach this host's own
    /// networks.
    #[arg(long, env = "PEERCHAT_TURN_ALLOW_PRIVATE")]
    pub turn_allow_private: bool,

    /// Most relay allocations one member may hold (a browser takes one per
    /// peer connection).
    #[arg(long, env = "PEERCHAT_TURN_MAX_ALLOCATIONS_PER_USER", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub turn_max_allocations_per_user: u32,

    /// Most relay allocations one client address may hold (IPv6: one /64),
    /// whatever credentials it uses.
    #[arg(long, env = "PEERCHAT_TURN_MAX_ALLOCATIONS_PER_ADDRESS", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub turn_max_allocations_per_address: u32,

    /// Most relay allocations in all.
    #[arg(long, env = "PEERCHAT_TURN_MAX_ALLOCATIONS", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub turn_max_allocations: u32,

    /// Bandwidth each relay allocation may use, in KiB/s (both ways).
    #[arg(long, env = "PEERCHAT_TURN_BANDWIDTH_KIB", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub turn_bandwidth_kib: u32,

    /// Share rooms with every other `peerchat serve` given the same Redis
    /// (`redis://HOST:PORT`, `rediss://` for TLS, `unix:///PATH`): any
    /// member of any room may connect to any of them, behind a load
    /// balancer. Without it the server keeps everything in memory, alone.
    #[arg(long, env = "PEERCHAT_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// How long a server's lease in Redis lasts: a server that cannot renew
    /// it for this long stops serving its rooms, and one that died is
    /// noticed by the others after this long (its members resume elsewhere
    /// within --resume-grace, which should be several times longer).
    #[arg(long, env = "PEERCHAT_REDIS_LEASE", default_value = "5s", value_parser = humantime::parse_duration)]
    pub redis_lease: Duration,

    /// Turn off the long-poll mailbox at `POST /sig`.
    #[arg(long, env = "PEERCHAT_NO_MAILBOX")]
    pub no_mailbox: bool,

    /// Longest mailbox id, in characters.
    #[arg(long, env = "PEERCHAT_MAILBOX_MAX_ID_LEN", default_value_t = MailboxConfig::DEFAULT_MAX_ID_LEN,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub mailbox_max_id_len: u32,

    /// The characters mailbox ids may use (ASCII).
    #[arg(long, env = "PEERCHAT_MAILBOX_ID_ALPHABET",
          default_value = peerchat_mailbox::DEFAULT_ID_ALPHABET)]
    pub mailbox_id_alphabet: String,

    /// Largest text posted to the mailbox, in bytes.
    #[arg(long, env = "PEERCHAT_MAILBOX_MAX_BODY", default_value_t = MailboxConfig::DEFAULT_MAX_BODY,
          value_parser = clap::value_parser!(u32).range(1..=16 * 1024 * 1024))]
    pub mailbox_max_body: u32,

    /// Longest wait a mailbox request may ask for with `timeoutms` (and the
    /// wait when it gives none).
    #[arg(long, env = "PEERCHAT_MAILBOX_MAX_WAIT", default_value = "20m", value_parser = humantime::parse_duration)]
    pub mailbox_max_wait: Duration,

    /// Most texts waiting to be read on one mailbox id.
    #[arg(long, env = "PEERCHAT_MAILBOX_QUEUE_PER_ID", default_value_t = MailboxConfig::DEFAULT_MAX_QUEUED_PER_ID,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub mailbox_queue_per_id: u32,

    /// Most texts waiting to be read in the whole mailbox.
    #[arg(long, env = "PEERCHAT_MAILBOX_QUEUE_TOTAL", default_value_t = MailboxConfig::DEFAULT_MAX_QUEUED_TOTAL,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub mailbox_queue_total: u32,

    /// Most mailbox requests waiting at once; more are answered 503.
    #[arg(long, env = "PEERCHAT_MAILBOX_MAX_IN_FLIGHT", default_value_t = MailboxConfig::DEFAULT_MAX_IN_FLIGHT,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub mailbox_max_in_flight: u32,

    /// The PeerJS endpoint's flags.
    #[command(flatten)]
    pub peerjs: crate::peerjs::PeerjsArgs,
}

/// Everything the server needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Room and rate-limit settings.
    pub hub: HubConfig,
    /// Largest WebSocket message, in bytes.
    pub max_message_size: usize,
    /// WebSocket read and write buffer, in bytes.
    pub ws_buffer_size: usize,
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// Most connections from one client network; 0: no limit.
    pub max_connections_per_address: u32,
    /// WebSockets one client network may open per second.
    pub join_rate_per_address: f64,
    /// WebSockets one client network may open in a burst.
    pub join_burst_per_address: f64,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<crate::IpNet>,
    /// Extra allowed origins; `*` allows any.
    pub allowed_origins: Vec<String>,
    /// Host names answered besides IP addresses and loopback names; `*`
    /// allows any.
    pub allowed_hosts: Vec<String>,
    /// WebSocket ping interval.
    pub ping_interval: Duration,
    /// Dead-peer timeout.
    pub idle_timeout: Duration,
    /// HTTP header read timeout.
    pub handshake_timeout: Duration,
    /// Join timeout.
    pub join_timeout: Duration,
    /// The long-poll mailbox's limits, or `None` when it is turned off.
    pub mailbox: Option<MailboxConfig>,
    /// ICE servers given to every member (from --ice-server).
    pub ice_servers: Vec<IceServer>,
    /// TURN with per-member credentials, if any.
    pub turn: Option<Turn>,
    /// The PeerJS endpoint's settings, or `None` when it is off.
    pub peerjs: Option<peerchat_peerjs::Config>,
    /// The Redis shared with other servers, if any.
    pub cluster: Option<ClusterSettings>,
}

/// Rooms shared with other servers through Redis.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// The Redis URL, checked.
    pub url: String,
    /// How long a lease lasts.
    pub lease: Duration,
    /// Whether the TURN secret is to be shared through Redis (none was
    /// given): the first server makes one, the others use it.
    pub share_turn_secret: bool,
}

/// TURN with short-lived credentials.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The secret credentials are derived from.
    pub secret: Secret,
    /// How long credentials stay valid.
    pub ttl: Duration,
    /// Run the embedded relay, or point at an external server.
    pub server: TurnServer,
}

/// Where the TURN server is.
#[derive(Debug, Clone)]
pub enum TurnServer {
    /// The embedded relay.
    Embedded {
        /// The UDP port (0: any free one).
        port: u16,
        /// The address peers reach the relay at, when given.
        public_ip: Option<IpAddr>,
        /// Which peers the relay may reach.
        policy: PeerPolicy,
        /// Allocations per member.
        max_allocations_per_user: usize,
        /// Allocations per client address.
        max_allocations_per_address: usize,
        /// Allocations in all.
        max_allocations: usize,
        /// Bytes per second per allocation.
        bandwidth: u64,
    },
    /// An external TURN server at these URLs.
    External {
        /// `turn:`/`turns:` URLs.
        urls: Vec<String>,
    },
}

/// A setting that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An ICE server URL has the wrong scheme.
    #[error("--ice-server {0:?}: must start with stun:, stuns:, turn: or turns:")]
    IceServerScheme(String),
    /// A TURN URL without credentials.
    #[error("--ice-server {0:?}: TURN servers need --ice-username and --ice-credential")]
    TurnWithoutCredentials(String),
    /// Timeouts that would disconnect healthy clients.
    #[error("--idle-timeout ({idle:?}) must be longer than --ping-interval ({ping:?})")]
    IdleShorterThanPing {
        /// The idle timeout.
        idle: Duration,
        /// The ping interval.
        ping: Duration,
    },
    /// A zero duration where time must pass.
    #[error("--{0} must be longer than zero")]
    ZeroDuration(&'static str),
    /// TURN credentials valid for too long.
    #[error("--turn-ttl may be at most 1h")]
    TurnTtlTooLong,
    /// TURN credentials valid for too short a time to be used.
    #[error("--turn-ttl must be at least 1m")]
    TurnTtlTooShort,
    /// A resume grace period so long that away members would hold room
    /// places and nicknames for hours.
    #[error("--resume-grace may be at most 1h")]
    ResumeGraceTooLong,
    /// A --redis-url the Redis client cannot use.
    #[error("--redis-url: {0}")]
    RedisUrl(String),
    /// A lease too short to renew in time, or too long to notice a dead
    /// server while its members may still resume.
    #[error("--redis-lease must be between 1s and 5m")]
    RedisLease,
    /// A --turn-url that is not a TURN URL.
    #[error("--turn-url {0:?}: must start with turn: or turns:")]
    TurnUrlScheme(String),
    /// A PeerJS setting that cannot work.
    #[error(transparent)]
    Peerjs(#[from] crate::peerjs::PeerjsConfigError),
}

impl ServeArgs {
    /// Checks the flags and turns them into a [`Config`].
    pub fn into_config(self) -> Result<Config, ConfigError> {
        for (name, d) in [
            ("ping-interval", self.ping_interval),
            ("idle-timeout", self.idle_timeout),
            ("handshake-timeout", self.handshake_timeout),
            ("join-timeout", self.join_timeout),
            ("turn-ttl", self.turn_ttl),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        if self.idle_timeout <= self.ping_interval {
            return Err(ConfigError::IdleShorterThanPing {
                idle: self.idle_timeout,
                ping: self.ping_interval,
            });
        }
        if self.turn_ttl > Duration::from_secs(3600) {
            return Err(ConfigError::TurnTtlTooLong);
        }
        if self.turn_ttl < Duration::from_secs(60) {
            return Err(ConfigError::TurnTtlTooShort);
        }
        if self.resume_grace > Duration::from_secs(3600) {
            return Err(ConfigError::ResumeGraceTooLong);
        }
        for url in &self.turn_urls {
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("turn:") || lower.starts_with("turns:")) {
                return Err(ConfigError::TurnUrlScheme(url.clone()));
            }
        }
        let turn_server = if !self.turn_urls.is_empty() {
            Some(TurnServer::External {
                urls: self.turn_urls,
            })
        } else if self.no_turn {
            None
        } else {
            Some(TurnServer::Embedded {
                port: self.turn_port,
                public_ip: self.public_ip,
                policy: PeerPolicy {
                    allow_private: self.turn_allow_private,
                },
                max_allocations_per_user: self.turn_max_allocations_per_user as usize,
                max_allocations_per_address: self.turn_max_allocations_per_address as usize,
                max_allocations: self.turn_max_allocations as usize,
                bandwidth: u64::from(self.turn_bandwidth_kib) * 1024,
            })
        };
        let turn_setup = turn_server.map(|server| Turn {
            secret: self
                .turn_secret
                .as_deref()
                .map_or_else(Secret::random, Secret::new),
            ttl: self.turn_ttl,
            server,
        });
        let mut stun = Vec::new();
        let mut turn = Vec::new();
        for url in self.ice_servers {
            let lower = url.to_ascii_lowercase();
            if lower.starts_with("turn:") || lower.starts_with("turns:") {
                if self.ice_username.is_none() {
                    return Err(ConfigError::TurnWithoutCredentials(url));
                }
                turn.push(url);
            } else if lower.starts_with("stun:") || lower.starts_with("stuns:") {
                stun.push(url);
            } else {
                return Err(ConfigError::IceServerScheme(url));
            }
        }
        let mut ice_servers = Vec::new();
        if !stun.is_empty() {
            ice_servers.push(IceServer {
                urls: stun,
                username: None,
                credential: None,
            });
        }
        if !turn.is_empty() {
            ice_servers.push(IceServer {
                urls: turn,
                username: self.ice_username,
                credential: self.ice_credential,
            });
        }
        let cluster = match self.redis_url {
            Some(url) => {
                if let Err(err) = redis::Client::open(url.as_str()) {
                    return Err(ConfigError::RedisUrl(err.to_string()));
                }
                if self.redis_lease < Duration::from_secs(1)
                    || self.redis_lease > Duration::from_secs(300)
                {
                    return Err(ConfigError::RedisLease);
                }
                Some(ClusterSettings {
                    url,
                    lease: self.redis_lease,
                    share_turn_secret: self.turn_secret.is_none(),
                })
            }
            None => None,
        };
        let mut config = Config {
            cluster,
            hub: HubConfig {
                room_capacity: self.room_capacity as usize,
                rate_per_sec: self.rate_limit,
                rate_burst: self.rate_burst,
                byte_rate_per_sec: self.rate_limit_bytes,
                byte_burst: self.rate_burst_bytes.max(self.max_message_size),
                ice: Arc::new(ice_servers.clone()),
                resume_grace: self.resume_grace,
                send_queue_bytes: self.send_queue_bytes as usize,
            },
            ice_servers,
            turn: turn_setup,
            max_message_size: self.max_message_size as usize,
            ws_buffer_size: self.ws_buffer_size as usize,
            max_connections: self.max_connections as usize,
            max_connections_per_address: self.max_connections_per_address,
            join_rate_per_address: f64::from(self.join_rate_per_address),
            join_burst_per_address: f64::from(self.join_burst_per_address),
            trusted_proxies: self.trusted_proxies,
            allowed_origins: self.allowed_origins,
            allowed_hosts: self.allowed_hosts,
            ping_interval: self.ping_interval,
            idle_timeout: self.idle_timeout,
            handshake_timeout: self.handshake_timeout,
            join_timeout: self.join_timeout,
            mailbox: (!self.no_mailbox).then_some(MailboxConfig {
                max_id_len: self.mailbox_max_id_len as usize,
                id_alphabet: self.mailbox_id_alphabet,
                max_body: self.mailbox_max_body as usize,
                max_wait: self.mailbox_max_wait,
                max_queued_per_id: self.mailbox_queue_per_id as usize,
                max_queued_total: self.mailbox_queue_total as usize,
                max_in_flight: self.mailbox_max_in_flight as usize,
            }),
            peerjs: None,
        };
        config.peerjs = self.peerjs.into_config(&config.hub)?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        serve: ServeArgs,
    }

    /// The flags' defaults are the hub's and the mailbox's own, durations
    /// included (their flags are written as text).
    #[test]
    fn flag_defaults_are_the_libraries_defaults() {
        let config = Flags::parse_from(["peerchat", "--no-turn"])
            .serve
            .into_config()
            .unwrap();
        let hub = HubConfig::default();
        assert_eq!(config.hub.room_capacity, hub.room_capacity);
        assert_eq!(config.hub.rate_per_sec, hub.rate_per_sec);
        assert_eq!(config.hub.rate_burst, hub.rate_burst);
        assert_eq!(config.hub.byte_rate_per_sec, hub.byte_rate_per_sec);
        assert_eq!(config.hub.byte_burst, hub.byte_burst);
        assert_eq!(config.hub.resume_grace, hub.resume_grace);
        assert_eq!(config.mailbox, Some(MailboxConfig::default()));
    }
}
