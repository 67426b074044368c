//! What an engine connects to: a room on a peerchat server, or one other
//! peer with no room (connection codes by hand, or the server's mailbox),
//! and reading room links.
//!
//! A room link is `http(s)://HOST/r/ROOM_ID#SECRET`: the secret, in the
//! fragment, seals every signal between the members; it is read here and
//! never goes into anything sent to the server (the WebSocket URL is made
//! from the host alone).

pub use peerchat_e2e::Secret;
use peerchat_e2e::SecretError;
use peerchat_protocol::validate_room_id;
use url::Url;

use crate::pair::Role;

/// The server used with a bare room id when none is named.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// What an engine joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Session {
    /// A room on a peerchat server: any number of members, signals relayed
    /// by the server for as long as the room lasts (trickle ICE, repairs),
    /// membership kept across lost connections with a member key.
    Room {
        /// The server's WebSocket URL (`ws://host:port/ws`).
        ws_url: String,
        /// The room id.
        room: String,
        /// The room's secret (the link's fragment): every signal is sealed
        /// with a key derived from it. Never sent to the server.
        secret: Secret,
    },
    /// One other peer, by connection codes passed by hand: no server at
    /// all. The front end shows our code and hands the engine theirs (see
    /// [`crate::engine::Event::ConnectionCode`]). With a secret both sides
    /// were given, no code carries one.
    Manual(Role, Option<Secret>),
    /// One other peer, through a server's mailbox (`POST /sig`) under `id`:
    /// the side that made the pairing offers at once; the other waits for
    /// that offer and answers it (offering itself only if none comes).
    Mailbox {
        /// The server's WebSocket URL; the mailbox is on the same host
        /// (`http://` only).
        ws_url: String,
        /// The mailbox id both sides agreed on (the server sees it).
        id: String,
        /// The pairing's secret: it seals the codes (the server never sees
        /// it).
        secret: Secret,
        /// This side made the pairing (and gave it to the other).
        made: bool,
    },
}

impl Session {
    /// The room id, for a room.
    pub fn room(&self) -> Option<&str> {
        match self {
            Session::Room { room, .. } => Some(room),
            Session::Manual(..) | Session::Mailbox { .. } => None,
        }
    }

    /// Whether signals keep flowing between the peers for as long as they
    /// are connected (a room's server relays them: candidates trickle, and
    /// a failed connection can be repaired or replaced). A pair exchanges
    /// one offer and one answer, each complete with its candidates, and has
    /// no way to say anything more, nor to learn that the other left.
    pub fn relays_signals(&self) -> bool {
        matches!(self, Session::Room { .. })
    }
}

/// Where a room link points: the server's WebSocket URL, the room, its
/// secret, and whether the link asks for relay-only connections
/// (`?relay=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `ws://host:port/ws` or `wss://…`.
    pub ws_url: String,
    /// The room id.
    pub room: String,
    /// The room's secret, from the link's fragment.
    pub secret: Secret,
    /// `?relay=1` was on the link.
    pub relay: bool,
}

impl Target {
    /// A new room on the server at `server` (`http(s)://` or `ws(s)://`):
    /// a fresh room id and secret (`id` 16 random bytes, `secret` 32).
    pub fn new_room(
        server: &str,
        id: [u8; 16],
        secret: [u8; peerchat_e2e::SECRET_BYTES],
    ) -> Result<Target, TargetError> {
        Ok(Target {
            ws_url: server_ws_url(server)?,
            room: peerchat_e2e::base64url::encode(&id),
            secret: Secret::from_random(secret),
            relay: false,
        })
    }

    /// The session that joins this room.
    pub fn session(&self) -> Session {
        Session::Room {
            ws_url: self.ws_url.clone(),
            room: self.room.clone(),
            secret: self.secret.clone(),
        }
    }

    /// The room link to give to others (`http(s)://HOST/r/ROOM_ID#SECRET`,
    /// with `?relay=1` if asked for): it holds the secret, so show it only
    /// to the user, never log it.
    pub fn link(&self) -> String {
        let http = if self.ws_url.starts_with("wss:") {
            "https"
        } else {
            "http"
        };
        let host = self
            .ws_url
            .split_once("://")
            .map_or("", |(_, rest)| rest.trim_end_matches("/ws"));
        let relay = if self.relay { "?relay=1" } else { "" };
        format!(
            "{http}://{host}/r/{}{relay}#{}",
            self.room,
            self.secret.to_fragment()
        )
    }
}

/// Why a room link or server URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The room argument is neither a room link nor a room id.
    #[error("{link:?} is not a room link or room id: {reason}")]
    BadRoom {
        /// What was given.
        link: String,
        /// Why it is refused.
        reason: String,
    },
    /// The link has no secret after `#`, or a damaged one: without it, the
    /// room cannot be joined.
    #[error(
        "the room link {} has {}: ask for the full link, including the part after #",
        .link, if *.missing { "no secret (the part after #)" } else { "a damaged secret after #" }
    )]
    Secret {
        /// What was given, without its fragment.
        link: String,
        /// Whether the secret is missing (rather than damaged).
        missing: bool,
    },
    /// The server URL cannot be used.
    #[error("bad server URL {url:?}: {reason}")]
    BadServer {
        /// What was given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
}

/// Reads a room link (`http(s)://host/r/ROOM_ID#SECRET`), or a bare room id
/// with its secret (`ROOM_ID#SECRET`) and a server URL (default
/// [`DEFAULT_SERVER`]). A link without its secret is refused.
pub fn parse_target(room: &str, server: Option<&str>) -> Result<Target, TargetError> {
    let (before, fragment) = room.split_once('#').unwrap_or((room, ""));
    let bad_room = |reason: String| TargetError::BadRoom {
        link: before.to_owned(),
        reason,
    };
    let secret = |fragment: &str| {
        Secret::from_fragment(fragment).map_err(|e| TargetError::Secret {
            link: before.to_owned(),
            missing: e == SecretError::Missing,
        })
    };
    if before.contains("://") {
        let url = Url::parse(before).map_err(|e| bad_room(e.to_string()))?;
        let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
        let id = match segments.as_slice() {
            ["r", id] | ["r", id, ""] => *id,
            _ => {
                return Err(bad_room(
                    "a room link looks like http://host/r/ROOM_ID#SECRET".into(),
                ));
            }
        };
        validate_room_id(id).map_err(|e| bad_room(e.to_string()))?;
        let relay = url.query_pairs().any(|(k, v)| k == "relay" && v == "1");
        Ok(Target {
            ws_url: ws_url(&url).map_err(|e| bad_room(e.to_string()))?,
            room: id.to_owned(),
            secret: secret(fragment)?,
            relay,
        })
    } else {
        validate_room_id(before).map_err(|e| bad_room(e.to_string()))?;
        Ok(Target {
            ws_url: server_ws_url(server.unwrap_or(DEFAULT_SERVER))?,
            room: before.to_owned(),
            secret: secret(fragment)?,
            relay: false,
        })
    }
}

/// The WebSocket URL (`/ws`) of the server at `server` (`http(s)://` or
/// `ws(s)://`).
pub fn server_ws_url(server: &str) -> Result<String, TargetError> {
    let bad = |reason: String| TargetError::BadServer {
        url: server.to_owned(),
        reason,
    };
    let url = Url::parse(server).map_err(|e| bad(e.to_string()))?;
    ws_url(&url).map_err(|e| bad(e.to_string()))
}

/// Why a URL names no server.
#[derive(Debug, thiserror::Error)]
enum UrlError {
    #[error("the scheme {0:?} is not http(s) or ws(s)")]
    Scheme(String),
    #[error("no host")]
    NoHost,
}

fn ws_url(url: &Url) -> Result<String, UrlError> {
    let scheme = match url.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(UrlError::Scheme(other.to_owned())),
    };
    let host = url.host_str().ok_or(UrlError::NoHost)?;
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    Ok(match url.port() {
        Some(port) => format!("{scheme}://{host}:{port}/ws"),
        None => format!("{scheme}://{host}/ws"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "abcdefghijklmnopqrstuv";

    fn secret() -> Secret {
        Secret::from_random([9; 32])
    }

    fn fragment() -> String {
        secret().to_fragment()
    }

    #[test]
    fn room_links_name_the_server_and_carry_the_secret() {
        let f = fragment();
        let t = parse_target(&format!("http://127.0.0.1:8080/r/{ID}#{f}"), None).unwrap();
        assert_eq!(
            t,
            Target {
                ws_url: "ws://127.0.0.1:8080/ws".into(),
                room: ID.into(),
                secret: secret(),
                relay: false
            }
        );
        assert_eq!(t.link(), format!("http://127.0.0.1:8080/r/{ID}#{f}"));
        let t = parse_target(
            &format!("https://chat.example.org/r/{ID}?relay=1#{f}"),
            None,
        )
        .unwrap();
        assert_eq!(t.ws_url, "wss://chat.example.org/ws");
        assert!(t.relay);
        assert_eq!(
            t.link(),
            format!("https://chat.example.org/r/{ID}?relay=1#{f}")
        );
        let t = parse_target(&format!("http://[::1]:9/r/{ID}#{f}"), None).unwrap();
        assert_eq!(t.ws_url, "ws://[::1]:9/ws");
    }

    #[test]
    fn bare_ids_use_the_server_flag() {
        let f = fragment();
        let t = parse_target(&format!("{ID}#{f}"), Some("http://10.0.0.2:9000")).unwrap();
        assert_eq!(t.ws_url, "ws://10.0.0.2:9000/ws");
        let t = parse_target(&format!("{ID}#{f}"), None).unwrap();
        assert_eq!(t.ws_url, "ws://127.0.0.1:8080/ws");
        assert_eq!(
            t.session(),
            Session::Room {
                ws_url: "ws://127.0.0.1:8080/ws".into(),
                room: ID.into(),
                secret: secret(),
            }
        );
    }

    #[test]
    fn a_link_without_its_secret_is_refused_and_says_what_to_do() {
        for link in [
            format!("http://h:1/r/{ID}"),
            format!("http://h:1/r/{ID}#"),
            ID.to_owned(),
        ] {
            let err = parse_target(&link, None).unwrap_err();
            assert!(
                matches!(err, TargetError::Secret { missing: true, .. }),
                "{link}"
            );
            assert!(
                err.to_string().contains("including the part after #"),
                "{err}"
            );
        }
        let err = parse_target(&format!("http://h:1/r/{ID}#Zz9"), None).unwrap_err();
        assert!(matches!(err, TargetError::Secret { missing: false, .. }));
        assert!(
            !err.to_string().contains("Zz9"),
            "the secret is not repeated: {err}"
        );
    }

    #[test]
    fn a_new_room_has_a_fresh_id_and_secret() {
        let t = Target::new_room("http://127.0.0.1:8080", [1; 16], [2; 32]).unwrap();
        assert_eq!(t.room.len(), 22);
        let again = parse_target(&t.link(), None).unwrap();
        assert_eq!(again, t);
    }

    #[test]
    fn bad_targets_are_refused() {
        let f = fragment();
        assert!(parse_target(&format!("short#{f}"), None).is_err());
        assert!(parse_target(&format!("http://h/x/{ID}#{f}"), None).is_err());
        assert!(parse_target(&format!("ftp://h/r/{ID}#{f}"), None).is_err());
        assert!(matches!(
            parse_target(&format!("{ID}#{f}"), Some("not a url")),
            Err(TargetError::BadServer { .. })
        ));
    }
}
