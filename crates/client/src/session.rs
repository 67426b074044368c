//! What an engine connects to: a room on a peerchat server, or one other
//! peer with no room (connection codes by hand, or the server's mailbox),
//! and reading room links.

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
    },
    /// One other peer, by connection codes passed by hand: no server at
    /// all. The front end shows our code and hands the engine theirs (see
    /// [`crate::engine::Event::ConnectionCode`]).
    Manual(Role),
    /// One other peer, through a server's mailbox (`POST /sig`) under `id`:
    /// the first to arrive offers, the second answers.
    Mailbox {
        /// The server's WebSocket URL; the mailbox is on the same host
        /// (`http://` only).
        ws_url: String,
        /// The mailbox id both sides agreed on.
        id: String,
    },
}

impl Session {
    /// The room id, for a room.
    pub fn room(&self) -> Option<&str> {
        match self {
            Session::Room { room, .. } => Some(room),
            Session::Manual(_) | Session::Mailbox { .. } => None,
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

/// Where a room link points: the server's WebSocket URL, the room, and
/// whether the link asks for relay-only connections (`?relay=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `ws://host:port/ws` or `wss://…`.
    pub ws_url: String,
    /// The room id.
    pub room: String,
    /// `?relay=1` was on the link.
    pub relay: bool,
}

impl Target {
    /// The session that joins this room.
    pub fn session(&self) -> Session {
        Session::Room {
            ws_url: self.ws_url.clone(),
            room: self.room.clone(),
        }
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
    /// The server URL cannot be used.
    #[error("bad server URL {url:?}: {reason}")]
    BadServer {
        /// What was given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
}

/// Reads a room link (`http(s)://host/r/ROOM_ID`), or a bare room id with a
/// server URL (default [`DEFAULT_SERVER`]).
pub fn parse_target(room: &str, server: Option<&str>) -> Result<Target, TargetError> {
    let bad_room = |reason: String| TargetError::BadRoom {
        link: room.to_owned(),
        reason,
    };
    if room.contains("://") {
        let url = Url::parse(room).map_err(|e| bad_room(e.to_string()))?;
        let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
        let id = match segments.as_slice() {
            ["r", id] | ["r", id, ""] => *id,
            _ => {
                return Err(bad_room(
                    "a room link looks like http://host/r/ROOM_ID".into(),
                ));
            }
        };
        validate_room_id(id).map_err(|e| bad_room(e.to_string()))?;
        let relay = url.query_pairs().any(|(k, v)| k == "relay" && v == "1");
        Ok(Target {
            ws_url: ws_url(&url).map_err(|e| bad_room(e.to_string()))?,
            room: id.to_owned(),
            relay,
        })
    } else {
        validate_room_id(room).map_err(|e| bad_room(e.to_string()))?;
        Ok(Target {
            ws_url: server_ws_url(server.unwrap_or(DEFAULT_SERVER))?,
            room: room.to_owned(),
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

    #[test]
    fn room_links_name_the_server() {
        let t = parse_target(&format!("http://127.0.0.1:8080/r/{ID}"), None).unwrap();
        assert_eq!(
            t,
            Target {
                ws_url: "ws://127.0.0.1:8080/ws".into(),
                room: ID.into(),
                relay: false
            }
        );
        let t = parse_target(&format!("https://chat.example.org/r/{ID}?relay=1"), None).unwrap();
        assert_eq!(t.ws_url, "wss://chat.example.org/ws");
        assert!(t.relay);
        let t = parse_target(&format!("http://[::1]:9/r/{ID}"), None).unwrap();
        assert_eq!(t.ws_url, "ws://[::1]:9/ws");
    }

    #[test]
    fn bare_ids_use_the_server_flag() {
        let t = parse_target(ID, Some("http://10.0.0.2:9000")).unwrap();
        assert_eq!(t.ws_url, "ws://10.0.0.2:9000/ws");
        let t = parse_target(ID, None).unwrap();
        assert_eq!(t.ws_url, "ws://127.0.0.1:8080/ws");
        assert_eq!(
            t.session(),
            Session::Room {
                ws_url: "ws://127.0.0.1:8080/ws".into(),
                room: ID.into()
            }
        );
    }

    #[test]
    fn bad_targets_are_refused() {
        assert!(parse_target("short", None).is_err());
        assert!(parse_target(&format!("http://h/x/{ID}"), None).is_err());
        assert!(parse_target(&format!("ftp://h/r/{ID}"), None).is_err());
        assert!(matches!(
            parse_target(ID, Some("not a url")),
            Err(TargetError::BadServer { .. })
        ));
    }
}
