//! A room's history as kept on this device, exported (`/export PATH`) and
//! searched (`/search WORDS`): the same formats and matching rule as the
//! web client's `web/js/archive.js`; both replay
//! `tests/vectors/archive.json`.
//!
//! - Plain text: a first line naming the room and the number of messages,
//!   then one message per line as `YYYY-MM-DD HH:MM:SS ±HH:MM nick: text`
//!   in local time, each further line of a message indented by two spaces.
//! - JSON: `{"room", "exported_at", "messages": [{"id", "author", "nick",
//!   "seq", "clock", "ts", "time", "text"}]}`, `author` the peer id, `ts`
//!   milliseconds since the epoch and `time` the same in UTC (RFC 3339).
//! - Search: the words of the query (split at white space) must all occur
//!   in the message's text or its author's nickname, ignoring case and
//!   accents (both sides decomposed, NFKD, with marks dropped, then lower
//!   case). Newest first.

use chrono::{DateTime, FixedOffset, Local, SecondsFormat, TimeZone, Utc};
use peerchat_client::engine::ChatMessage;
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// A message as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kept {
    /// The message id.
    pub id: String,
    /// The author's peer id.
    pub author: String,
    /// The author's nickname when they wrote it.
    pub nick: String,
    /// The author's number for it.
    pub seq: u64,
    /// Its Lamport clock.
    pub clock: u64,
    /// When it was sent, ms since the epoch (the author's clock).
    pub ts: u64,
    /// The text.
    pub text: String,
}

impl From<&ChatMessage> for Kept {
    fn from(m: &ChatMessage) -> Self {
        Self {
            id: m.id.clone(),
            author: m.from.id.clone(),
            nick: m.from.nick.clone(),
            seq: m.seq,
            clock: m.clock,
            ts: m.ts,
            text: m.text.clone(),
        }
    }
}

fn utc(ts: u64) -> DateTime<Utc> {
    i64::try_from(ts)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_default()
}

/// A timestamp as `YYYY-MM-DD HH:MM:SS ±HH:MM` in the time zone `offset`.
pub fn stamp(ts: u64, offset: FixedOffset) -> String {
    utc(ts)
        .with_timezone(&offset)
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// This device's time zone at `ts`.
pub fn local_offset(ts: u64) -> FixedOffset {
    *Local.from_utc_datetime(&utc(ts).naive_utc()).offset()
}

/// The plain-text export; `offset_at` gives the time zone at a time.
pub fn export_text(
    room: &str,
    messages: &[Kept],
    offset_at: impl Fn(u64) -> FixedOffset,
) -> String {
    let count = if messages.len() == 1 {
        "1 message".to_owned()
    } else {
        format!("{} messages", messages.len())
    };
    let mut out = format!("peerchat room {room}: {count}\n");
    for m in messages {
        let mut lines = m.text.split('\n');
        let first = lines.next().unwrap_or_default();
        out.push_str(&format!(
            "{} {}: {first}\n",
            stamp(m.ts, offset_at(m.ts)),
            m.nick
        ));
        for line in lines {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

#[derive(Serialize)]
struct Export<'a> {
    room: &'a str,
    exported_at: String,
    messages: Vec<Exported<'a>>,
}

#[derive(Serialize)]
struct Exported<'a> {
    id: &'a str,
    author: &'a str,
    nick: &'a str,
    seq: u64,
    clock: u64,
    ts: u64,
    time: String,
    text: &'a str,
}

fn rfc3339(ts: u64) -> String {
    utc(ts).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The JSON export, exported at `now` (ms since the epoch).
pub fn export_json(room: &str, messages: &[Kept], now: u64) -> String {
    let export = Export {
        room,
        exported_at: rfc3339(now),
        messages: messages
            .iter()
            .map(|m| Exported {
                id: &m.id,
                author: &m.author,
                nick: &m.nick,
                seq: m.seq,
                clock: m.clock,
                ts: m.ts,
                time: rfc3339(m.ts),
                text: &m.text,
            })
            .collect(),
    };
    let mut json = serde_json::to_string_pretty(&export).unwrap_or_default();
    json.push('\n');
    json
}

/// Text as search compares it: decomposed, marks dropped, lower case.
pub fn fold(text: &str) -> String {
    text.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .collect::<String>()
        .to_lowercase()
}

/// The messages that hold every word of `query`, newest first, at most
/// `limit`. An empty query finds nothing.
pub fn search<'a>(messages: &'a [Kept], query: &str, limit: usize) -> Vec<&'a Kept> {
    let folded = fold(query);
    let words: Vec<&str> = folded.split_whitespace().collect();
    if words.is_empty() {
        return Vec::new();
    }
    messages
        .iter()
        .rev()
        .filter(|m| {
            let haystack = format!("{}\n{}", fold(&m.nick), fold(&m.text));
            words.iter().all(|w| haystack.contains(w))
        })
        .take(limit)
        .collect()
}

/// Most results `/search` lists.
pub const MAX_RESULTS: usize = 20;

/// Writes the history to `path`: JSON if it ends in `.json`, plain text
/// otherwise. Returns how many messages it holds.
pub fn write(
    path: &std::path::Path,
    room: &str,
    messages: &[ChatMessage],
) -> std::io::Result<usize> {
    let kept: Vec<Kept> = messages.iter().map(Kept::from).collect();
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let body = if json {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        export_json(room, &kept, now)
    } else {
        export_text(room, &kept, local_offset)
    };
    std::fs::write(path, body)?;
    Ok(kept.len())
}

/// The answer to `/search`, one line each: a summary, then the messages
/// found (newest first), each as `YYYY-MM-DD HH:MM nick: text` on one line.
pub fn search_lines(messages: &[ChatMessage], query: &str) -> Vec<String> {
    let kept: Vec<Kept> = messages.iter().map(Kept::from).collect();
    let found = search(&kept, query, MAX_RESULTS);
    let mut lines = vec![match found.len() {
        0 => format!(
            "no message of the {} kept here holds “{}”",
            kept.len(),
            query.trim()
        ),
        n if n == MAX_RESULTS => format!("the newest {n} messages holding “{}”:", query.trim()),
        1 => format!("1 message holds “{}”:", query.trim()),
        n => format!("{n} messages hold “{}”, newest first:", query.trim()),
    }];
    for m in found {
        let when = utc(m.ts)
            .with_timezone(&local_offset(m.ts))
            .format("%Y-%m-%d %H:%M");
        let text = m.text.replace('\n', " ⏎ ");
        let text = if text.chars().count() > 200 {
            format!("{}…", text.chars().take(200).collect::<String>())
        } else {
            text
        };
        lines.push(format!("{when} {}: {text}", m.nick));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/vectors/archive.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn messages(v: &Value) -> Vec<Kept> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| Kept {
                id: m["id"].as_str().unwrap().into(),
                author: m["author"].as_str().unwrap().into(),
                nick: m["nick"].as_str().unwrap().into(),
                seq: m["seq"].as_u64().unwrap(),
                clock: m["clock"].as_u64().unwrap(),
                ts: m["ts"].as_u64().unwrap(),
                text: m["text"].as_str().unwrap().into(),
            })
            .collect()
    }

    #[test]
    fn the_plain_text_export_is_as_the_vectors_write_it() {
        let v = vectors();
        let minutes = i32::try_from(v["offset_minutes"].as_i64().unwrap()).unwrap();
        let offset = FixedOffset::east_opt(minutes * 60).unwrap();
        let room = v["room"].as_str().unwrap();
        assert_eq!(
            export_text(room, &messages(&v), |_| offset),
            v["text"].as_str().unwrap()
        );
        let west = FixedOffset::west_opt(330 * 60).unwrap();
        assert_eq!(stamp(0, west), "1969-12-31 18:30:00 -05:30");
    }

    #[test]
    fn the_json_export_is_as_the_vectors_write_it() {
        let v = vectors();
        let json = export_json(
            v["room"].as_str().unwrap(),
            &messages(&v),
            v["exported_at"].as_u64().unwrap(),
        );
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), v["json"]);
    }

    #[test]
    fn search_finds_messages_holding_every_word_ignoring_case_and_accents() {
        let v = vectors();
        let all = messages(&v);
        for case in v["searches"].as_array().unwrap() {
            let query = case["query"].as_str().unwrap();
            let found: Vec<&str> = search(&all, query, 100)
                .iter()
                .map(|m| m.id.as_str())
                .collect();
            let expected: Vec<&str> = case["found"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            assert_eq!(found, expected, "{query}");
        }
        assert_eq!(search(&all, "deploy", 1).len(), 1);
    }
}
