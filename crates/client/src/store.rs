//! Keeps each room's history in SQLite, so it survives a restart of the
//! terminal client. Nothing leaves the machine: the file is read when a room
//! opens and written as messages arrive.
//!
//! Several clients may share the file (it is one per user by default), and
//! each member keeps its own history of a room: its clear mark and the
//! delivery state of its messages are its own, so a client joining a room
//! under another nickname starts with nothing of the first one's, just as
//! a browser elsewhere does. Rows are kept under `ROOM/PEER_ID` (a room id
//! holds no `/`).
//!
//! It also keeps the identity keys of the others, pinned on first use per
//! room and nickname ([`Store::check_pin`]), and whether the user verified
//! them by comparing safety numbers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use peerchat_e2e::{Alg, PublicKey, pin_name};
use peerchat_history::{Message, Saved};
use rusqlite::{Connection, OptionalExtension, params};

/// Errors of the history file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("history file {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The directory for the file could not be made.
    #[error("history file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The saved state does not read back.
    #[error("history file: bad saved state: {0}")]
    BadState(#[from] serde_json::Error),
}

/// A file offer as kept; one that no longer reads is left out.
fn file_from_json(json: &str) -> Option<peerchat_protocol::file::FileMeta> {
    let value = serde_json::from_str(json).ok()?;
    peerchat_protocol::file::FileMeta::from_value(&value).ok()
}

/// SQLite integers are signed; every number here is at most 2^53 - 1.
/// Turns an SQLite error on the file at `path` into a [`StoreError`].
fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// What a nickname's key is, against its pin ([`Store::check_pin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinCheck {
    /// Seen for the first time: now pinned.
    New,
    /// The pinned key again; `verified` if the user verified it.
    Same {
        /// Verified by comparing safety numbers.
        verified: bool,
    },
    /// Another key than the pinned one: the safety number changed.
    Changed,
}

/// The history file.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    db: Connection,
    /// The member whose history this is, once known.
    member: Option<String>,
}

/// Where the history file lives by default: `$XDG_DATA_HOME/peerchat/`, or
/// `~/.local/share/peerchat/`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("peerchat").join("history.sqlite3"))
}

impl Store {
    /// Opens (or creates) the history file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: path.to_owned(),
                source,
            })?;
        }
        let sql = sqlite_error(path);
        let db = Connection::open(path).map_err(sql)?;
        // Several terminal clients may share the file.
        db.busy_timeout(Duration::from_secs(5)).map_err(sql)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS messages (
                 room TEXT NOT NULL, author TEXT NOT NULL, seq INTEGER NOT NULL,
                 clock INTEGER NOT NULL, nick TEXT NOT NULL, id TEXT NOT NULL,
                 ts INTEGER NOT NULL, text TEXT NOT NULL,
                 PRIMARY KEY (room, author, seq));
             CREATE TABLE IF NOT EXISTS state (
                 room TEXT PRIMARY KEY, saved TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS keys (
                 room TEXT NOT NULL, nick TEXT NOT NULL, key TEXT NOT NULL,
                 PRIMARY KEY (room, nick));
             CREATE TABLE IF NOT EXISTS pins (
                 room TEXT NOT NULL, name TEXT NOT NULL, alg TEXT NOT NULL,
                 key BLOB NOT NULL, verified INTEGER NOT NULL, since INTEGER NOT NULL,
                 PRIMARY KEY (room, name));",
        )
        .map_err(sql)?;
        // Files from before messages were signed lack these columns.
        let columns: Vec<String> = db
            .prepare("SELECT name FROM pragma_table_info('messages')")
            .and_then(|mut st| st.query_map([], |row| row.get(0))?.collect())
            .map_err(sql)?;
        for (column, kind) in [
            ("alg", "TEXT NOT NULL DEFAULT ''"),
            ("key", "TEXT NOT NULL DEFAULT ''"),
            ("sig", "TEXT NOT NULL DEFAULT ''"),
            ("relayed_by", "TEXT"),
            ("file", "TEXT"),
            // Entries of other kinds (replies, edits, …): their kind and
            // target, as JSON ({"kind":…,"re":{…}}); NULL for chat messages.
            ("about", "TEXT"),
        ] {
            if !columns.iter().any(|c| c == column) {
                db.execute_batch(&format!("ALTER TABLE messages ADD COLUMN {column} {kind};"))
                    .map_err(sql)?;
            }
        }
        Ok(Self {
            path: path.to_owned(),
            db,
            member: None,
        })
    }

    /// From now on, reads and writes the history of the member with this
    /// peer id (until then, rows are kept under the bare room id).
    pub fn set_member(&mut self, peer_id: &str) {
        self.member = Some(peer_id.to_owned());
    }

    /// The name under which this member's history of `room` is kept.
    fn scope(&self, room: &str) -> String {
        match &self.member {
            Some(member) => format!("{room}/{member}"),
            None => room.to_owned(),
        }
    }

    /// Files written before histories were kept per member hold a room's
    /// rows under the bare room id: the first member to open the room here
    /// takes them over.
    fn adopt_unowned(&mut self, room: &str) -> Result<(), StoreError> {
        let scope = self.scope(room);
        if scope == room {
            return Ok(());
        }
        let sql = sqlite_error(&self.path);
        let tx = self.db.transaction().map_err(sql)?;
        let owned: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE room = ?1)
                     OR EXISTS (SELECT 1 FROM state WHERE room = ?1)",
                params![scope],
                |row| row.get(0),
            )
            .map_err(sql)?;
        if !owned {
            tx.execute(
                "UPDATE messages SET room = ?2 WHERE room = ?1",
                params![room, scope],
            )
            .map_err(sql)?;
            tx.execute(
                "UPDATE state SET room = ?2 WHERE room = ?1",
                params![room, scope],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        sqlite_error(&self.path)(source)
    }

    /// Everything this member keeps of `room`.
    pub fn load(&mut self, room: &str) -> Result<Saved, StoreError> {
        self.adopt_unowned(room)?;
        let room = &self.scope(room);
        let mut statement = self
            .db
            .prepare(
                "SELECT author, seq, clock, nick, id, ts, text, alg, key, sig, relayed_by, file, about
                 FROM messages WHERE room = ?1",
            )
            .map_err(|e| self.sql(e))?;
        let messages = statement
            .query_map(params![room], |row| {
                let about: About = row
                    .get::<_, Option<String>>(12)?
                    .and_then(|json| serde_json::from_str(&json).ok())
                    .unwrap_or_default();
                Ok(Message {
                    author: row.get(0)?,
                    seq: unsigned(row.get(1)?),
                    clock: unsigned(row.get(2)?),
                    nick: row.get(3)?,
                    id: row.get(4)?,
                    ts: unsigned(row.get(5)?),
                    text: row.get(6)?,
                    file: row
                        .get::<_, Option<String>>(11)?
                        .and_then(|json| file_from_json(&json))
                        .map(Box::new),
                    alg: row.get(7)?,
                    key: row.get(8)?,
                    sig: row.get(9)?,
                    relayed_by: row.get(10)?,
                    kind: about.kind,
                    re: about.re,
                })
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| self.sql(e))?;
        let state: Option<String> = self
            .db
            .query_row(
                "SELECT saved FROM state WHERE room = ?1",
                params![room],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        let mut saved: Saved = match state {
            Some(json) => serde_json::from_str(&json)?,
            None => Saved::default(),
        };
        saved.messages = messages;
        Ok(saved)
    }

    /// The member key used in `room` under `nick`, made (with `make`) and
    /// kept the first time: the same nickname in the same room comes back
    /// as the same member, with its own messages. (A room does not let two
    /// members share a nickname, so two clients sharing this file cannot
    /// share a key.)
    pub fn key(
        &self,
        room: &str,
        nick: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String, StoreError> {
        let nick = peerchat_protocol::validate::nick_key(nick);
        if let Some(key) = self.kept_key(room, &nick)? {
            return Ok(key);
        }
        let key = make();
        self.db
            .execute(
                "INSERT OR IGNORE INTO keys (room, nick, key) VALUES (?1, ?2, ?3)",
                params![room, nick, key],
            )
            .map_err(|e| self.sql(e))?;
        // Another client may have got there first.
        Ok(self.kept_key(room, &nick)?.unwrap_or(key))
    }

    /// The member key kept for `nick` (in `nick_key` form) in `room`.
    fn kept_key(&self, room: &str, nick: &str) -> Result<Option<String>, StoreError> {
        self.db
            .query_row(
                "SELECT key FROM keys WHERE room = ?1 AND nick = ?2",
                params![room, nick],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// The key pinned for `nick` in `room` (in [`pin_name`] form), and
    /// whether it was verified.
    pub fn pin(&self, room: &str, nick: &str) -> Result<Option<(PublicKey, bool)>, StoreError> {
        let row: Option<(String, Vec<u8>, bool)> = self
            .db
            .query_row(
                "SELECT alg, key, verified FROM pins WHERE room = ?1 AND name = ?2",
                params![room, pin_name(nick)],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        // A row that does not read back is as good as none.
        Ok(row.and_then(|(alg, key, verified)| {
            let alg = Alg::from_name(&alg)?;
            PublicKey::new(alg, &key).ok().map(|k| (k, verified))
        }))
    }

    /// Checks the key `nick` presents in `room` against its pin, pinning it
    /// if there is none. A changed key leaves the pin as it was: show it,
    /// then [`Store::replace_pin`].
    pub fn check_pin(
        &self,
        room: &str,
        nick: &str,
        key: &PublicKey,
    ) -> Result<PinCheck, StoreError> {
        match self.pin(room, nick)? {
            Some((pinned, verified)) if pinned == *key => Ok(PinCheck::Same { verified }),
            Some(_) => Ok(PinCheck::Changed),
            None => {
                self.replace_pin(room, nick, key)?;
                Ok(PinCheck::New)
            }
        }
    }

    /// Pins `key` for `nick` in `room`, not verified (a first key, or one
    /// that replaces a changed one once the user was shown the change).
    pub fn replace_pin(&self, room: &str, nick: &str, key: &PublicKey) -> Result<(), StoreError> {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| signed(d.as_millis() as u64));
        self.db
            .execute(
                "INSERT INTO pins (room, name, alg, key, verified, since) VALUES (?1, ?2, ?3, ?4, 0, ?5)
                 ON CONFLICT (room, name) DO UPDATE SET alg = excluded.alg, key = excluded.key,
                     verified = 0, since = excluded.since",
                params![room, pin_name(nick), key.alg().name(), key.raw(), since],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Pins the key of `old` in `room` for `new` as well, with its
    /// verification, if it is `key` (a member took a new nickname over a
    /// connection whose hello showed that key). Returns whether it did.
    pub fn carry_pin(
        &self,
        room: &str,
        old: &str,
        new: &str,
        key: &PublicKey,
    ) -> Result<bool, StoreError> {
        let Some((pinned, verified)) = self.pin(room, old)? else {
            return Ok(false);
        };
        if pinned != *key {
            return Ok(false);
        }
        self.replace_pin(room, new, key)?;
        if verified {
            self.set_verified(room, new, key, true)?;
        }
        Ok(true)
    }

    /// Marks `nick`'s pinned key in `room` verified (or not), if the pin is
    /// still `key`. Returns whether it did.
    pub fn set_verified(
        &self,
        room: &str,
        nick: &str,
        key: &PublicKey,
        verified: bool,
    ) -> Result<bool, StoreError> {
        if self
            .pin(room, nick)?
            .is_none_or(|(pinned, _)| pinned != *key)
        {
            return Ok(false);
        }
        self.db
            .execute(
                "UPDATE pins SET verified = ?3 WHERE room = ?1 AND name = ?2",
                params![room, pin_name(nick), verified],
            )
            .map(|n| n > 0)
            .map_err(|e| self.sql(e))
    }

    /// Adds messages.
    pub fn add(&mut self, room: &str, messages: &[Message]) -> Result<(), StoreError> {
        let room = &self.scope(room);
        let sql = sqlite_error(&self.path);
        let tx = self.db.transaction().map_err(sql)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO messages
                         (room, author, seq, clock, nick, id, ts, text, alg, key, sig, relayed_by,
                          file, about)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .map_err(sql)?;
            for m in messages {
                insert
                    .execute(params![
                        room,
                        m.author,
                        signed(m.seq),
                        signed(m.clock),
                        m.nick,
                        m.id,
                        signed(m.ts),
                        m.text,
                        m.alg,
                        m.key,
                        m.sig,
                        m.relayed_by,
                        m.file
                            .as_deref()
                            .map(peerchat_protocol::file::FileMeta::to_json),
                        About::of(m)
                    ])
                    .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// Rewrites a kept message: one relayed and verified since.
    pub fn update(&mut self, room: &str, message: &Message) -> Result<(), StoreError> {
        let room = &self.scope(room);
        self.db
            .execute(
                "UPDATE messages SET relayed_by = ?4, alg = ?5, key = ?6
                 WHERE room = ?1 AND author = ?2 AND seq = ?3",
                params![
                    room,
                    message.author,
                    signed(message.seq),
                    message.relayed_by,
                    message.alg,
                    message.key
                ],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Forgets one message of `room` (a relayed one found forged).
    pub fn remove(&mut self, room: &str, author: &str, seq: u64) -> Result<(), StoreError> {
        let room = &self.scope(room);
        self.db
            .execute(
                "DELETE FROM messages WHERE room = ?1 AND author = ?2 AND seq = ?3",
                params![room, author, signed(seq)],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Saves delivery state and the clear mark ([`History::save_state`]).
    ///
    /// [`History::save_state`]: peerchat_history::History::save_state
    pub fn save_state(&self, room: &str, state: &Saved) -> Result<(), StoreError> {
        let room = &self.scope(room);
        let json = serde_json::to_string(state)?;
        self.db
            .execute(
                "INSERT INTO state (room, saved) VALUES (?1, ?2)
                 ON CONFLICT (room) DO UPDATE SET saved = excluded.saved",
                params![room, json],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Keeps only `keep` of a room's messages.
    pub fn trim(&mut self, room: &str, keep: &[Message]) -> Result<(), StoreError> {
        let room = &self.scope(room);
        let sql = sqlite_error(&self.path);
        let tx = self.db.transaction().map_err(sql)?;
        tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS keep (author TEXT, seq INTEGER); DELETE FROM keep;",
        )
        .map_err(sql)?;
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO keep (author, seq) VALUES (?1, ?2)")
                .map_err(sql)?;
            for m in keep {
                insert
                    .execute(params![m.author, signed(m.seq)])
                    .map_err(sql)?;
            }
        }
        tx.execute(
            "DELETE FROM messages WHERE room = ?1
             AND NOT EXISTS (SELECT 1 FROM keep WHERE keep.author = messages.author AND keep.seq = messages.seq)",
            params![room],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// The name under which the private conversation with `peer` in `room`
    /// is kept: pass it where the methods take a room. It holds a space,
    /// which no room id does, so it never names a room.
    pub fn conversation(room: &str, peer: &str) -> String {
        format!("{room} private:{peer}")
    }

    /// The other parties of this member's private conversations kept of
    /// `room`.
    pub fn conversations(&self, room: &str) -> Result<Vec<String>, StoreError> {
        let prefix = Self::conversation(room, "");
        let suffix = match &self.member {
            Some(member) => format!("/{member}"),
            None => String::new(),
        };
        let mut statement = self
            .db
            .prepare(
                "SELECT room FROM messages WHERE substr(room, 1, ?2) = ?1
                 UNION SELECT room FROM state WHERE substr(room, 1, ?2) = ?1",
            )
            .map_err(|e| self.sql(e))?;
        let names: Vec<String> = statement
            .query_map(
                params![prefix, signed(prefix.chars().count() as u64)],
                |row| row.get(0),
            )
            .and_then(Iterator::collect)
            .map_err(|e| self.sql(e))?;
        let mut peers: Vec<String> = names
            .iter()
            .filter_map(|name| name.strip_prefix(&prefix)?.strip_suffix(&suffix))
            .filter(|peer| !peer.is_empty() && !peer.contains('/'))
            .map(str::to_owned)
            .collect();
        peers.sort();
        peers.dedup();
        Ok(peers)
    }

    /// Forgets a room's messages.
    pub fn clear(&self, room: &str) -> Result<(), StoreError> {
        let room = &self.scope(room);
        self.db
            .execute("DELETE FROM messages WHERE room = ?1", params![room])
            .map(drop)
            .map_err(|e| self.sql(e))
    }
}

/// The kind and target of an entry of another kind than a chat message,
/// as the `about` column keeps them.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct About {
    kind: peerchat_history::EntryKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    re: Option<peerchat_history::EntryRef>,
}

impl About {
    /// The column's value for `m`: `None` for a chat message.
    fn of(m: &Message) -> Option<String> {
        (m.kind != peerchat_history::EntryKind::Chat || m.re.is_some()).then(|| {
            serde_json::to_string(&About {
                kind: m.kind,
                re: m.re.clone(),
            })
            .unwrap_or_default()
        })
    }
}

#[cfg(test)]
mod tests {
    use peerchat_e2e::IdentityKey;
    use peerchat_history::{Config, History};

    use super::*;

    /// A history file's path in a fresh directory (remove it when done).
    fn scratch() -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("peerchat-store-{}", crate::random_id()));
        let path = dir.join("history.sqlite3");
        (dir, path)
    }

    /// The history of member `me` (keyed from `seed`) after sending one
    /// message, `text` as `nick` at time `ts`, to `recipients`.
    fn sent_one(
        me: &str,
        seed: u8,
        nick: &str,
        text: &str,
        ts: u64,
        recipients: Vec<String>,
    ) -> (History, Message) {
        let mut h = History::new(me, Config::default());
        let (m, _) = h
            .send(
                &IdentityKey::from_seed([seed; 32]),
                "x",
                nick,
                text,
                ts,
                recipients,
            )
            .unwrap();
        (h, m)
    }

    #[test]
    fn replies_edits_reactions_and_room_names_come_back_as_what_they_are() {
        use peerchat_history::{EntryKind, EntryRef};
        let (dir, path) = scratch();
        let me = "aaaaaaaaaaaaaaaa";
        let id = IdentityKey::from_seed([1; 32]);
        let mut h = History::new(me, Config::default());
        let (first, _) = h.send(&id, "m1", "alice", "hello", 1, vec![]).unwrap();
        let re = || {
            Some(EntryRef {
                author: me.into(),
                seq: 1,
            })
        };
        let mut kept = vec![first];
        for (kind, text, re) in [
            (EntryKind::Reply, "me again", re()),
            (EntryKind::Edit, "hello all", re()),
            (EntryKind::React, "👍", re()),
            (EntryKind::RoomName, "Lunch", None),
            (EntryKind::Delete, "", re()),
        ] {
            let (m, _) = h
                .send_about(
                    &id,
                    &format!("m{}", kept.len() + 1),
                    "alice",
                    kind,
                    text,
                    re,
                    2,
                    vec![],
                )
                .unwrap();
            kept.push(m);
        }
        Store::open(&path).unwrap().add("room", &kept).unwrap();
        let mut saved = Store::open(&path).unwrap().load("room").unwrap();
        saved.messages.sort_by_key(|m| m.seq);
        assert_eq!(saved.messages, kept);
        let mut back = History::new(me, Config::default());
        assert_eq!(back.restore(saved).len(), kept.len());
        assert!(back.entry_state(me, 1).deleted);
        assert_eq!(back.room_name().unwrap().text, "Lunch");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_room_survives_closing_the_file() {
        let (dir, path) = scratch();
        let (h, m) = sent_one(
            "aaaaaaaaaaaaaaaa",
            1,
            "alice",
            "hello",
            1,
            vec!["bbbbbbbbbbbbbbbb".into()],
        );
        {
            let mut store = Store::open(&path).unwrap();
            store.add("room", &[m]).unwrap();
            store.save_state("room", &h.save_state()).unwrap();
            assert_eq!(store.key("room", "Alice", || "k1".into()).unwrap(), "k1");
        }
        let mut store = Store::open(&path).unwrap();
        let saved = store.load("room").unwrap();
        // The same nickname (ignoring case) gets the same key; another not.
        assert_eq!(store.key("room", "alice", || "k2".into()).unwrap(), "k1");
        assert_eq!(store.key("room", "bob", || "k3".into()).unwrap(), "k3");
        assert_eq!(store.key("other", "alice", || "k4".into()).unwrap(), "k4");
        let mut back = History::new("aaaaaaaaaaaaaaaa", Config::default());
        assert_eq!(back.restore(saved).len(), 1);
        assert_eq!(
            back.delivery(1).waiting,
            vec!["bbbbbbbbbbbbbbbb".to_owned()]
        );
        assert!(store.load("another room").unwrap().messages.is_empty());
        store.clear("room").unwrap();
        assert!(store.load("room").unwrap().messages.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_pin_follows_a_rename_with_its_verification() {
        let (dir, path) = scratch();
        let store = Store::open(&path).unwrap();
        let a = IdentityKey::from_seed([1; 32]).public_key();
        let b = IdentityKey::from_seed([2; 32]).public_key();
        assert_eq!(store.check_pin("room", "alice", &a).unwrap(), PinCheck::New);
        assert!(store.set_verified("room", "alice", &a, true).unwrap());
        // Another key than the pinned one carries nothing.
        assert!(!store.carry_pin("room", "alice", "ally", &b).unwrap());
        assert_eq!(store.pin("room", "ally").unwrap(), None);
        assert!(store.carry_pin("room", "alice", "ally", &a).unwrap());
        assert_eq!(
            store.check_pin("room", "Ally", &a).unwrap(),
            PinCheck::Same { verified: true }
        );
        assert_eq!(
            store.check_pin("room", "alice", &a).unwrap(),
            PinCheck::Same { verified: true }
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn keys_are_pinned_on_first_use_per_room_and_nickname() {
        let (dir, path) = scratch();
        let a = IdentityKey::from_seed([1; 32]).public_key();
        let b = IdentityKey::from_seed([2; 32]).public_key();
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.check_pin("room", "Alice", &a).unwrap(), PinCheck::New);
            assert!(store.set_verified("room", "alice", &a, true).unwrap());
            assert!(!store.set_verified("room", "alice", &b, true).unwrap());
        }
        let store = Store::open(&path).unwrap();
        // The pin name is the nickname in NFKC, lower case.
        assert_eq!(
            store.check_pin("room", "ＡＬＩＣＥ", &a).unwrap(),
            PinCheck::Same { verified: true }
        );
        assert_eq!(
            store.check_pin("room", "alice", &b).unwrap(),
            PinCheck::Changed
        );
        // Another room is another pin.
        assert_eq!(
            store.check_pin("other", "alice", &b).unwrap(),
            PinCheck::New
        );
        // Replaced once shown: the verified mark goes with the old key.
        store.replace_pin("room", "alice", &b).unwrap();
        assert_eq!(
            store.check_pin("room", "alice", &b).unwrap(),
            PinCheck::Same { verified: false }
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn members_sharing_the_file_keep_their_own_history_and_older_rows_are_adopted() {
        let (dir, path) = scratch();
        let (mut h, m) = sent_one("aaaaaaaaaaaaaaaa", 1, "alice", "hello", 1, Vec::new());
        h.clear();
        {
            // A file from before histories were kept per member.
            let mut store = Store::open(&path).unwrap();
            store.add("room", std::slice::from_ref(&m)).unwrap();
        }
        let mut alice = Store::open(&path).unwrap();
        alice.set_member("aaaaaaaaaaaaaaaa");
        assert_eq!(alice.load("room").unwrap().messages, vec![m.clone()]);
        alice.clear("room").unwrap();
        alice.save_state("room", &h.save_state()).unwrap();
        let mut bob = Store::open(&path).unwrap();
        bob.set_member("bbbbbbbbbbbbbbbb");
        let (_, n) = sent_one("bbbbbbbbbbbbbbbb", 2, "bob", "hi", 2, Vec::new());
        bob.add("room", std::slice::from_ref(&n)).unwrap();
        // Bob sees neither alice's clear mark nor her messages, and the
        // other way round.
        assert_eq!(
            bob.load("room").unwrap(),
            Saved {
                messages: vec![n],
                ..Saved::default()
            }
        );
        let alice_saved = alice.load("room").unwrap();
        assert!(alice_saved.messages.is_empty());
        assert_eq!(alice_saved.cleared, 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
