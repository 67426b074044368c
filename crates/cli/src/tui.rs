//! The full-screen terminal UI: the chat log with scrollback, the members
//! with their connection state, and an input line.
//!
//! [`Ui`] holds what is on screen and is updated from engine [`Event`]s;
//! [`render`] draws it. Neither touches the terminal, so both are tested
//! with ratatui's `TestBackend`; [`run`] wires them to a real terminal.

use ratatui::Frame;
use ratatui::crossterm::event::{
    self, Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers,
};
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, Paragraph};
use std::time::Instant;

use tokio::sync::mpsc;

use crate::ChatError;
use crate::command::{self, Command, Entry, Mode};
use crate::input::Input;
use crate::scroll::{Scroll, View};
use crate::status::{Level, ServerStatus};
use crate::wrap::{Piece, wrap};
use peerchat_client::engine::Identity;
use peerchat_client::engine::{ChatMessage, Engine, Event, MemberStats, Peer};
use peerchat_client::peer::LinkState;

/// One line of the chat log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEntry {
    /// A chat message.
    Message {
        /// `HH:MM`, local time.
        time: String,
        /// The author's nickname.
        author: String,
        /// Whether we wrote it.
        own: bool,
        /// The text.
        text: String,
        /// Its place in the room's order: clock, author id, number.
        key: (u64, String, u64),
        /// For our messages: where delivery stands; for a relayed one not
        /// verified yet, that it is.
        status: Option<String>,
        /// For a reply: what it answers (`NICK: TEXT`), shown above it.
        quote: Option<String>,
    },
    /// A private message: an entry of the conversation with one member,
    /// shown where it arrives, marked private.
    Private {
        /// `HH:MM`, local time.
        time: String,
        /// "you → bob" or "alice → you".
        author: String,
        /// Whether we wrote it.
        own: bool,
        /// The text.
        text: String,
        /// The other party's peer id, the author's, and the number.
        key: (String, String, u64),
        /// For ours: whether the other party holds it.
        status: Option<String>,
    },
    /// A notice: joins, departures, connection details.
    Notice(String),
    /// Something that went wrong here: a mistyped command, a message
    /// not sent.
    Error(String),
}

/// Everything the screen shows.
#[derive(Debug, Clone)]
pub struct Ui {
    /// The room id.
    pub room: String,
    /// Ourselves, once joined.
    pub me: Option<Peer>,
    /// The signaling connection.
    pub server: ServerStatus,
    /// The other members and our connection to each.
    pub members: Vec<(Peer, LinkState)>,
    /// The chat log, oldest first.
    pub log: Vec<LogEntry>,
    /// The text being written.
    pub input: Input,
    /// Where the log is scrolled to.
    pub scroll: Scroll,
    /// Messages that arrived below while scrolled back.
    pub unseen: usize,
    /// The widest author's name in the log, in columns.
    pub widest_author: usize,
    /// Relay-only mode is on.
    pub relay_only: bool,
    /// The join was refused: the input line asks for a nickname.
    pub awaiting_nick: bool,
    /// Who is typing, until when.
    pub typing: Vec<(Peer, Instant)>,
    /// What we know of members' identity keys, by peer id.
    pub identities: std::collections::HashMap<String, Identity>,
    /// The room link, for `/qr`.
    pub link: String,
    /// The QR code shown over everything (`/qr`), until a key is pressed.
    pub qr: Option<Vec<String>>,
    /// The name completion under way: Tab again puts in the next name.
    pub completion: Option<Completion>,
    /// Files being fetched: id, name, bytes held, size, stalled.
    pub transfers: Vec<(String, String, u64, u64, bool)>,
    /// The room's name, once someone set one.
    pub room_name: String,
}

/// A name completed with Tab, so that Tab again puts in the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Where the `@` is.
    start: usize,
    /// The names that fit what was typed.
    names: Vec<String>,
    /// The one put in.
    index: usize,
    /// The text as the completion left it.
    text: String,
}

impl Ui {
    /// An empty screen for `room`.
    pub fn new(room: &str, relay_only: bool) -> Self {
        Self {
            room: room.to_owned(),
            me: None,
            server: ServerStatus::default(),
            members: Vec::new(),
            log: Vec::new(),
            input: Input::default(),
            scroll: Scroll::Follow,
            unseen: 0,
            widest_author: 0,
            relay_only,
            awaiting_nick: false,
            typing: Vec::new(),
            identities: std::collections::HashMap::new(),
            link: String::new(),
            qr: None,
            completion: None,
            transfers: Vec::new(),
            room_name: String::new(),
        }
    }

    /// Completes the name being typed after `@` from the members' names;
    /// pressed again, puts in the next name that fits.
    fn complete(&mut self) {
        let text = self.input.text().to_owned();
        if let Some(c) = self.completion.as_mut().filter(|c| c.text == text) {
            c.index = (c.index + 1) % c.names.len();
            let name = format!("@{} ", c.names[c.index]);
            let end = self.input.cursor();
            self.input.replace(c.start..end, &name);
            c.text = self.input.text().to_owned();
            return;
        }
        self.completion = None;
        let Some((start, typed)) = crate::mention::query(&text, self.input.cursor()) else {
            return;
        };
        let nicks: Vec<&str> = self.members.iter().map(|(p, _)| p.nick.as_str()).collect();
        let names: Vec<String> = crate::mention::candidates(typed, &nicks)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if names.is_empty() {
            return;
        }
        let name = format!("@{} ", names[0]);
        self.input.replace(start..self.input.cursor(), &name);
        self.completion = Some(Completion {
            start,
            names,
            index: 0,
            text: self.input.text().to_owned(),
        });
    }

    /// The mentions in a message's text, by the names of those here now.
    fn mentions(&self, text: &str) -> Vec<crate::mention::Mention> {
        let me = self.me.as_ref().map(|p| p.nick.as_str());
        let nicks: Vec<&str> = self
            .members
            .iter()
            .map(|(p, _)| p.nick.as_str())
            .chain(me)
            .collect();
        crate::mention::find(text, &nicks, me)
    }

    fn notice(&mut self, text: impl Into<String>) {
        self.log.push(LogEntry::Notice(text.into()));
    }

    fn error(&mut self, text: impl Into<String>) {
        self.log.push(LogEntry::Error(text.into()));
    }

    /// Follows the newest lines again.
    fn follow(&mut self) {
        self.scroll = Scroll::Follow;
        self.unseen = 0;
    }

    /// Adds a chat message to the log, once, at its place in the order
    /// (history can arrive after newer messages).
    pub fn message(&mut self, m: &ChatMessage) {
        let key = (m.clock, m.from.id.clone(), m.seq);
        self.typing.retain(|(p, _)| p.id != m.from.id);
        let mut at = self.log.len();
        for (i, entry) in self.log.iter().enumerate().rev() {
            if let LogEntry::Message { key: other, .. } = entry {
                if *other == key {
                    return;
                }
                if *other < key {
                    break;
                }
                at = i;
            }
        }
        if at == self.log.len() {
            if self.scroll.is_back() {
                self.unseen += 1;
            }
        } else {
            self.scroll.inserted(at);
        }
        let status = if m.own {
            Some(if self.members.is_empty() {
                "sent".to_owned()
            } else {
                "sending…".to_owned()
            })
        } else {
            m.relayed_by
                .as_ref()
                .map(|by| format!("relayed by {}, not yet verified", by.nick))
        };
        let author = if m.own {
            "you".to_owned()
        } else {
            m.from.nick.clone()
        };
        self.widest_author = self.widest_author.max(crate::wrap::width(&author));
        self.log.insert(
            at,
            LogEntry::Message {
                time: clock(m.ts),
                author,
                own: m.own,
                text: m.text.clone(),
                key,
                status,
                quote: m.quote.as_ref().map(crate::conversation::quote_line),
            },
        );
    }

    /// Adds a private message of the conversation with `with`, once, at
    /// the end of the log.
    pub fn private_message(&mut self, with: &Peer, m: &ChatMessage) {
        let key = (with.id.clone(), m.from.id.clone(), m.seq);
        if self
            .log
            .iter()
            .any(|e| matches!(e, LogEntry::Private { key: k, .. } if *k == key))
        {
            return;
        }
        if self.scroll.is_back() {
            self.unseen += 1;
        }
        let author = if m.own {
            format!("you → {}", with.nick)
        } else {
            format!("{} → you", m.from.nick)
        };
        self.widest_author = self.widest_author.max(crate::wrap::width(&author));
        self.log.push(LogEntry::Private {
            time: clock(m.ts),
            author,
            own: m.own,
            text: m.text.clone(),
            key,
            status: m.own.then(|| "sending…".to_owned()),
        });
    }

    /// Who is typing now.
    pub fn typing_now(&self, now: Instant) -> Vec<&str> {
        self.typing
            .iter()
            .filter(|(_, until)| *until > now)
            .map(|(p, _)| p.nick.as_str())
            .collect()
    }

    /// Updates the screen from an engine event.
    pub fn apply(&mut self, event: &Event) {
        self.apply_at(event, Instant::now());
    }

    /// Updates the screen from an engine event that came at `now`.
    pub fn apply_at(&mut self, event: &Event, now: Instant) {
        match event {
            Event::Server { state, retry_in_ms } => {
                if let Some(change) = self.server.update(*state, *retry_in_ms, now) {
                    if change.is_loss() {
                        self.notice(format!(
                            "{} (the top line counts down to the next try)",
                            change.text()
                        ));
                    } else {
                        self.notice(change.text());
                    }
                }
            }
            Event::Joined { you, members } => {
                self.me = Some(you.clone());
                self.awaiting_nick = false;
                self.members = members
                    .iter()
                    .map(|m| (m.clone(), LinkState::Connecting))
                    .collect();
                let here = if members.is_empty() {
                    "nobody else is here yet".to_owned()
                } else {
                    format!(
                        "here: {}",
                        members
                            .iter()
                            .map(|m| m.nick.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                self.notice(format!("you joined as {}; {here}", you.nick));
            }
            Event::JoinRefused { message, .. } => {
                self.awaiting_nick = true;
                self.notice(format!("could not join: {message}"));
                self.notice("type another nickname and press Enter");
            }
            Event::MemberJoined { member } => {
                self.members.push((member.clone(), LinkState::Connecting));
                self.notice(format!("{} joined", member.nick));
            }
            Event::MemberLeft { member } => {
                self.members.retain(|(m, _)| m.id != member.id);
                self.notice(format!("{} left", member.nick));
            }
            Event::MemberRenamed { member, old } => {
                for (m, _) in self.members.iter_mut().filter(|(m, _)| m.id == member.id) {
                    m.nick.clone_from(&member.nick);
                }
                self.notice(format!("{old} is now {}", member.nick));
            }
            Event::Renamed { you, .. } => {
                self.me = Some(you.clone());
                self.notice(format!("you are now {}", you.nick));
            }
            Event::RenameRefused { message, .. } => self.error(format!("not renamed: {message}")),
            Event::MemberState { member, state } => {
                match self.members.iter_mut().find(|(m, _)| m.nick == member.nick) {
                    Some(entry) => *entry = (member.clone(), *state),
                    None => self.members.push((member.clone(), *state)),
                }
            }
            Event::Message(m) => self.message(m),
            Event::FileProgress {
                fid,
                name,
                bytes,
                size,
                stalled,
            } => {
                let entry = (fid.clone(), name.clone(), *bytes, *size, *stalled);
                match self.transfers.iter_mut().find(|t| t.0 == *fid) {
                    Some(t) => *t = entry,
                    None => self.transfers.push(entry),
                }
            }
            Event::FileOffered { .. }
            | Event::FileSaved { .. }
            | Event::FileFailed { .. }
            | Event::FileWithdrawn { .. } => {
                if let Event::FileSaved { fid, .. } | Event::FileFailed { fid, .. } = event {
                    self.transfers.retain(|t| t.0 != *fid);
                }
                if let Some(text) = command::file_notice(event) {
                    if matches!(event, Event::FileFailed { .. }) {
                        self.error(text);
                    } else {
                        self.notice(text);
                    }
                }
            }
            Event::PrivateMessage { with, message } => self.private_message(with, message),
            Event::PrivateDelivery { with, seq } => {
                let me = self.me.as_ref().map(|p| p.id.clone()).unwrap_or_default();
                for entry in self.log.iter_mut().rev() {
                    if let LogEntry::Private { key, status, .. } = entry {
                        if key.0 == with.id && key.1 == me && key.2 == *seq {
                            *status = Some("✓ delivered".to_owned());
                            break;
                        }
                    }
                }
            }
            Event::Delivery {
                seq,
                delivered,
                waiting,
            } => {
                let me = self.me.as_ref().map(|p| p.id.clone()).unwrap_or_default();
                let text = if waiting.is_empty() {
                    "✓ delivered".to_owned()
                } else {
                    let names: Vec<&str> = waiting.iter().map(|p| p.nick.as_str()).collect();
                    format!("waiting for {}", names.join(", "))
                };
                let _ = delivered;
                for entry in self.log.iter_mut().rev() {
                    if let LogEntry::Message { key, status, .. } = entry {
                        if key.1 == me && key.2 == *seq {
                            *status = Some(text);
                            break;
                        }
                    }
                }
            }
            Event::Typing { member } => {
                let until = now + std::time::Duration::from_secs(6);
                self.typing.retain(|(p, _)| p.id != member.id);
                self.typing.push((member.clone(), until));
            }
            // Pairs run in line mode.
            Event::ConnectionCode { .. } | Event::CodeWanted { .. } => {}
            Event::PairingFailed { message } | Event::CodeRefused { message } => {
                self.notice(message.clone());
            }
            Event::SignalRefused { message, .. } => self.notice(message.clone()),
            Event::NotVerified { member, reason } => self.error(format!(
                "could not verify {}: {reason}; the connection was closed",
                member.nick
            )),
            Event::Forged { author, by, count } => {
                let what = if *count == 1 {
                    "a message".to_owned()
                } else {
                    format!("{count} messages")
                };
                self.error(if author.id == by.id {
                    format!(
                        "{what} from {} refused: the signature does not match their key",
                        author.nick
                    )
                } else {
                    format!(
                        "{what} attributed to {}, relayed by {}, refused: {} did not sign it",
                        author.nick, by.nick, author.nick
                    )
                });
            }
            Event::MessageVerified { author, seq } => {
                for entry in &mut self.log {
                    if let LogEntry::Message {
                        key, status, own, ..
                    } = entry
                    {
                        if !*own && key.1 == author.id && key.2 == *seq {
                            *status = None;
                        }
                    }
                }
            }
            Event::Changed { author, seq, shown } => {
                for entry in &mut self.log {
                    if let LogEntry::Message { key, text, .. } = entry {
                        if key.1 == author.id && key.2 == *seq {
                            *text = crate::conversation::shown_text(shown);
                        }
                    }
                }
            }
            Event::RoomName { name, by } => {
                if *name != self.room_name {
                    self.room_name.clone_from(name);
                    self.notice(if name.is_empty() {
                        format!("{} cleared the room's name", by.nick)
                    } else {
                        format!("{} named the room “{name}”", by.nick)
                    });
                }
            }
            Event::MessageRemoved { author, seq, by } => {
                self.log.retain(|entry| {
                    !matches!(entry, LogEntry::Message { key, own: false, .. } if key.1 == author.id && key.2 == *seq)
                });
                self.error(format!(
                    "a message attributed to {}, relayed by {}, was forged and has been removed",
                    author.nick, by.nick
                ));
            }
            Event::MemberIdentity { member, identity } => {
                self.identities.insert(member.id.clone(), *identity);
            }
            Event::KeyChanged { member } => self.error(format!(
                "{}'s safety number has changed: they use another identity key than before \
                 (a new device, or someone else). Compare it again with /verify {}",
                member.nick, member.nick
            )),
        }
    }
}

/// Names are right-aligned in a column this wide at most (or a sixth of
/// a wide log).
const NAME_COLUMN: usize = 12;
/// `HH:MM `
const TIME_WIDTH: usize = 6;

impl Ui {
    /// The width of the names' column, and where messages' text starts:
    /// rows after a message's first start there too (a hanging indent). A
    /// longer name pushes its first row's text further right; in a narrow
    /// log the indent is smaller.
    fn columns(&self, width: usize) -> (usize, usize) {
        let names = self.widest_author.min(NAME_COLUMN.max(width / 6));
        let text = TIME_WIDTH + names + 2;
        if text * 2 <= width {
            (names, text)
        } else {
            (names, 2)
        }
    }

    /// The rows entry `i` of the log takes at `width` columns, as drawn.
    fn entry_lines(&self, i: usize, width: usize) -> Vec<Line<'static>> {
        match &self.log[i] {
            LogEntry::Message {
                time,
                author,
                own,
                text,
                status,
                quote,
                ..
            } => {
                let author_style = if *own {
                    Style::new().fg(Color::Cyan).bold()
                } else {
                    Style::new().fg(Color::Magenta).bold()
                };
                let (names, indent) = self.columns(width);
                let pad = names.saturating_sub(crate::wrap::width(author));
                let prefix = vec![
                    Span::styled(format!("{time} "), Style::new().dim()),
                    Span::raw(" ".repeat(pad)),
                    Span::styled(format!("{author}: "), author_style),
                ];
                let status = status.as_ref().map(|s| format!("({s})"));
                let quote = quote.as_ref().map(|q| format!("↪ {q}\n"));
                let mut pieces = Vec::new();
                if let Some(quote) = &quote {
                    pieces.push(Piece::new(quote, Style::new().dim().italic()));
                }
                let mut at = 0;
                for mention in self.mentions(text) {
                    if mention.range.start > at {
                        pieces.push(Piece::new(&text[at..mention.range.start], Style::new()));
                    }
                    let style = if mention.me {
                        Style::new().fg(Color::Black).bg(Color::Yellow).bold()
                    } else {
                        Style::new().fg(Color::Cyan).bold()
                    };
                    pieces.push(Piece::new(&text[mention.range.clone()], style));
                    at = mention.range.end;
                }
                if at < text.len() || pieces.is_empty() {
                    pieces.push(Piece::new(&text[at..], Style::new()));
                }
                if let Some(status) = &status {
                    pieces.push(Piece::new("  ", Style::new()));
                    pieces.push(Piece::together(status, Style::new().dim()));
                }
                wrap(prefix, &pieces, width, indent)
            }
            LogEntry::Private {
                time,
                author,
                own,
                text,
                status,
                ..
            } => {
                let author_style = if *own {
                    Style::new().fg(Color::Cyan).bold()
                } else {
                    Style::new().fg(Color::Magenta).bold()
                };
                let (_, indent) = self.columns(width);
                let prefix = vec![
                    Span::styled(format!("{time} "), Style::new().dim()),
                    Span::styled("[private] ", Style::new().fg(Color::Yellow).bold()),
                    Span::styled(format!("{author}: "), author_style),
                ];
                let status = status.as_ref().map(|s| format!("({s})"));
                let mut pieces = vec![Piece::new(text, Style::new().fg(Color::Yellow))];
                if let Some(status) = &status {
                    pieces.push(Piece::new("  ", Style::new()));
                    pieces.push(Piece::together(status, Style::new().dim()));
                }
                wrap(prefix, &pieces, width, indent)
            }
            LogEntry::Notice(text) => {
                let style = Style::new().dim().italic();
                wrap(
                    vec![Span::styled("* ", style)],
                    &[Piece::new(text, style)],
                    width,
                    2,
                )
            }
            LogEntry::Error(text) => {
                let style = Style::new().fg(Color::Red);
                wrap(
                    vec![Span::styled("! ", style.bold())],
                    &[Piece::new(text, style)],
                    width,
                    2,
                )
            }
        }
    }

    /// The log's entries and their heights at `width`, in a view `height`
    /// rows tall.
    fn with_view<T>(&self, width: usize, height: usize, f: impl FnOnce(View<'_>) -> T) -> T {
        let rows = |i: usize| self.entry_lines(i, width).len();
        f(View {
            count: self.log.len(),
            height,
            rows: &rows,
        })
    }

    /// The rows of the log in a view of `width` × `height`.
    fn visible_lines(&self, width: usize, height: usize) -> Vec<Line<'static>> {
        let (entry, row) = self.with_view(width, height, |view| self.scroll.top(view));
        let mut lines = Vec::with_capacity(height);
        for i in entry..self.log.len() {
            let skip = if i == entry { row } else { 0 };
            lines.extend(self.entry_lines(i, width).into_iter().skip(skip));
            if lines.len() >= height {
                break;
            }
        }
        lines.truncate(height);
        lines
    }
}

/// Where the parts of the screen go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Areas {
    title: Rect,
    log: Rect,
    /// None on a narrow terminal: the title line counts the members.
    members: Option<Rect>,
    input: Rect,
}

/// The input box grows up to this many rows of text.
const INPUT_ROWS: usize = 5;
/// Below this width, the members' list gives its room to the log.
const MEMBERS_MIN_SCREEN: u16 = 60;

impl Ui {
    /// Columns the members' list takes on a screen `screen` wide: room for
    /// the longest name and the longest state (so it does not change width
    /// as states change), up to a quarter of the screen.
    fn members_width(&self, screen: u16) -> u16 {
        let names = self
            .members
            .iter()
            .map(|(p, _)| crate::wrap::width(&p.nick) + " reconnecting".len())
            .chain(
                self.me
                    .iter()
                    .map(|me| crate::wrap::width(&me.nick) + " (you)".len()),
            )
            .max()
            .unwrap_or(0);
        // "● ", the borders, and room for the title.
        let most = (screen / 4).clamp(18, 30);
        u16::try_from(names + 4).unwrap_or(u16::MAX).clamp(18, most)
    }
}

impl Areas {
    fn new(area: Rect, ui: &Ui) -> Self {
        let rows = ui
            .input
            .rows(usize::from(area.width.saturating_sub(2)))
            .len()
            .clamp(1, INPUT_ROWS);
        // Leave the log at least a few rows on a short terminal.
        let input_height = (rows as u16 + 2).min(area.height.saturating_sub(6).max(3));
        let [title, body, input] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(input_height),
        ])
        .areas(area);
        let (log, members) = if area.width < MEMBERS_MIN_SCREEN {
            (body, None)
        } else {
            let [log, members] = Layout::horizontal([
                Constraint::Min(20),
                Constraint::Length(ui.members_width(area.width)),
            ])
            .areas(body);
            (log, Some(members))
        };
        Self {
            title,
            log,
            members,
            input,
        }
    }

    /// The log's text area, inside its border.
    fn log_text(&self) -> Rect {
        self.log.inner(ratatui::layout::Margin::new(1, 1))
    }

    /// The input's text area, inside its border.
    fn input_text(&self) -> Rect {
        self.input.inner(ratatui::layout::Margin::new(1, 1))
    }
}

/// `HH:MM`, local time, of a timestamp in milliseconds.
fn clock(ts_ms: u64) -> String {
    i64::try_from(ts_ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.with_timezone(&chrono::Local).format("%H:%M").to_string())
        .unwrap_or_else(|| "--:--".to_owned())
}

fn state_style(state: LinkState) -> (Color, &'static str) {
    let color = match state {
        LinkState::Connected => Color::Green,
        LinkState::Connecting | LinkState::Verifying | LinkState::Reconnecting => Color::Yellow,
        LinkState::NotVerified => Color::Red,
    };
    (color, state.as_str())
}

/// Draws the screen.
pub fn render(frame: &mut Frame, ui: &Ui) {
    render_at(frame, ui, Instant::now());
}

/// Draws the screen as it is at `now` (typing notices run out, the
/// countdown to the next attempt at the server runs down).
pub fn render_at(frame: &mut Frame, ui: &Ui, now: Instant) {
    if let Some(qr) = &ui.qr {
        render_qr(frame, qr, &ui.link);
        return;
    }
    let areas = Areas::new(frame.area(), ui);
    let Areas {
        title: top,
        log: log_area,
        members: members_area,
        input: input_area,
    } = areas;

    let (server_text, level) = ui.server.label(now);
    let server_color = match level {
        Level::Good => Color::Green,
        Level::Waiting => Color::Yellow,
        Level::Bad => Color::Red,
    };
    let short: String = ui.room.chars().take(8).collect();
    let mut title = vec![
        Span::styled(
            " peerchat ",
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::raw(if ui.room_name.is_empty() {
            format!(" room {short}… ")
        } else {
            format!(" {} ", ui.room_name)
        }),
        Span::styled(format!("● {server_text}"), Style::new().fg(server_color)),
    ];
    if ui.relay_only {
        title.push(Span::styled("  IP hidden", Style::new().fg(Color::Magenta)));
    }
    if members_area.is_none() {
        let here = ui.members.len() + usize::from(ui.me.is_some());
        title.push(Span::styled(format!("  {here} here"), Style::new().dim()));
    }
    frame.render_widget(Paragraph::new(Line::from(title)), top);

    let inner = areas.log_text();
    let lines = ui.visible_lines(inner.width.into(), inner.height.into());
    let mut block = Block::bordered().title(" Chat ");
    if ui.scroll.is_back() {
        let below = match ui.unseen {
            0 => " scrolled back · End: newest ".to_owned(),
            1 => " scrolled back · 1 new message below · End ".to_owned(),
            n => format!(" scrolled back · {n} new messages below · End "),
        };
        block = block.title_bottom(Line::from(below).style(Style::new().bold()));
    }
    if !ui.transfers.is_empty() {
        let parts: Vec<String> = ui
            .transfers
            .iter()
            .map(|(_, name, bytes, size, stalled)| {
                let percent = if *size == 0 { 100 } else { bytes * 100 / size };
                let state = if *stalled { ", stalled" } else { "" };
                format!(
                    "⇣ {name} {percent}% of {}{state}",
                    command::human_size(*size)
                )
            })
            .collect();
        block = block.title_bottom(
            Line::from(format!(" {} ", parts.join(" · ")))
                .style(Style::new().fg(Color::Cyan))
                .right_aligned(),
        );
    }
    frame.render_widget(Paragraph::new(lines).block(block), log_area);

    let mut items = Vec::new();
    if let Some(me) = &ui.me {
        items.push(ListItem::new(Line::from(vec![
            Span::styled("● ", Style::new().fg(Color::Blue)),
            Span::styled(me.nick.clone(), Style::new().bold()),
            Span::styled(" (you)", Style::new().dim()),
        ])));
    }
    let room = members_area.map_or(0, |a| usize::from(a.width.saturating_sub(2)));
    for (peer, state) in &ui.members {
        let (color, label) = state_style(*state);
        let mut spans = vec![
            Span::styled("● ", Style::new().fg(color)),
            Span::raw(peer.nick.clone()),
        ];
        match ui.identities.get(&peer.id) {
            Some(identity) if identity.verified => {
                spans.push(Span::styled(" ✓", Style::new().fg(Color::Green).bold()));
            }
            Some(identity) if identity.changed => {
                spans.push(Span::styled(" !", Style::new().fg(Color::Red).bold()));
            }
            _ => {}
        }
        // A long name keeps the dot's colour only.
        if 2 + crate::wrap::width(&peer.nick) + 1 + label.len() <= room {
            spans.push(Span::styled(format!(" {label}"), Style::new().dim()));
        }
        items.push(ListItem::new(Line::from(spans)));
    }
    let count = items.len();
    if let Some(members_area) = members_area {
        frame.render_widget(
            List::new(items).block(Block::bordered().title(format!(" Members ({count}) "))),
            members_area,
        );
    }

    let typing = ui.typing_now(now);
    let typing_title = match typing.as_slice() {
        [] => String::new(),
        [one] => format!(" {one} is typing… "),
        many => format!(" {} are typing… ", many.join(", ")),
    };
    let prompt = match (ui.awaiting_nick, input_area.width >= 70) {
        (true, _) => " Nickname (Enter to join, Ctrl-C to quit) ",
        (false, true) => " Message (Enter sends, Alt+Enter new line, Ctrl-C leaves, /help) ",
        (false, false) => " Message (Enter sends, /help) ",
    };
    let text_area = areas.input_text();
    let width = usize::from(text_area.width);
    let rows = ui.input.rows(width);
    let (cursor_row, cursor_col) = ui.input.cursor_at(width);
    // Rows in view: those ending with the cursor's.
    let height = usize::from(text_area.height).max(1);
    let first = (cursor_row + 1).saturating_sub(height);
    let text = ui.input.text();
    let lines: Vec<Line> = rows[first..]
        .iter()
        .take(height)
        .map(|r| Line::raw(&text[r.start..r.end]))
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(prompt)
                .title_bottom(Line::from(typing_title).style(Style::new().italic().dim())),
        ),
        input_area,
    );
    let x = text_area.x + u16::try_from(cursor_col).unwrap_or(u16::MAX);
    let y = text_area.y + u16::try_from(cursor_row - first).unwrap_or(0);
    frame.set_cursor_position(Position::new(x.min(text_area.right()), y));
}

/// The room link's QR code over the whole screen, white on black, with
/// what it is above and how to close it below.
fn render_qr(frame: &mut Frame, qr: &[String], link: &str) {
    let area = frame.area();
    let width = qr.first().map_or(0, |l| l.chars().count());
    let fits = qr.len() + 2 <= usize::from(area.height) && width <= usize::from(area.width);
    let mut lines = vec![Line::from(Span::styled(
        "The room link: scan it to open the room on a phone",
        Style::new().bold(),
    ))];
    if fits {
        let code = Style::new().fg(Color::White).bg(Color::Black);
        lines.extend(qr.iter().map(|l| Line::from(Span::styled(l.clone(), code))));
    } else {
        lines.push(Line::raw(format!(
            "(the code needs a terminal of {}×{}; this one is {}×{})",
            width,
            qr.len() + 2,
            area.width,
            area.height
        )));
        lines.push(Line::raw(link.to_owned()));
    }
    lines.push(Line::from(Span::styled(
        "any key closes",
        Style::new().dim(),
    )));
    frame.render_widget(
        Paragraph::new(lines).alignment(ratatui::layout::Alignment::Center),
        area,
    );
}

/// What a key press asks for.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    None,
    Submit(String),
    Quit,
}

/// Handles a key press on a screen of size `screen`.
fn on_key(ui: &mut Ui, key: KeyEvent, screen: Rect) -> Action {
    if key.kind == KeyEventKind::Release {
        return Action::None;
    }
    if ui.qr.is_some() {
        ui.qr = None;
        return Action::None;
    }
    if key.code == KeyCode::Tab {
        ui.complete();
        return Action::None;
    }
    ui.completion = None;
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    let areas = Areas::new(screen, ui);
    let input_width = usize::from(areas.input_text().width);
    let input = &mut ui.input;
    match key.code {
        KeyCode::Char('c') if ctrl => return Action::Quit,
        // A new line in the text: Alt+Enter, Shift+Enter where the terminal
        // tells it from Enter, and Ctrl-J where neither arrives.
        KeyCode::Enter if alt || key.modifiers.contains(KeyModifiers::SHIFT) => input.newline(),
        KeyCode::Char('j') if ctrl => input.newline(),
        KeyCode::Char('d') if ctrl && input.is_empty() => return Action::Quit,
        KeyCode::Char('d') if ctrl => input.delete(),
        KeyCode::Char('a') if ctrl => input.home(),
        KeyCode::Char('e') if ctrl => input.end(),
        KeyCode::Char('b') if ctrl => input.left(),
        KeyCode::Char('f') if ctrl => input.right(),
        KeyCode::Char('b') if alt => input.word_left(),
        KeyCode::Char('f') if alt => input.word_right(),
        KeyCode::Char('u') if ctrl => input.delete_to_start(),
        KeyCode::Char('k') if ctrl => input.delete_to_end(),
        KeyCode::Char('w') if ctrl => input.delete_word(),
        KeyCode::Char(c) if !ctrl && !alt => input.insert(c.encode_utf8(&mut [0; 4])),
        KeyCode::Backspace if ctrl || alt => input.delete_word(),
        KeyCode::Backspace => input.backspace(),
        KeyCode::Delete => input.delete(),
        KeyCode::Left if ctrl || alt => input.word_left(),
        KeyCode::Right if ctrl || alt => input.word_right(),
        KeyCode::Left => input.left(),
        KeyCode::Right => input.right(),
        // Up and Down move between rows of the text; past its first or
        // last row, through what was sent.
        KeyCode::Up if input.up(input_width) => {}
        KeyCode::Up => {
            input.recall_older();
        }
        KeyCode::Down if input.down(input_width) => {}
        KeyCode::Down => {
            input.recall_newer();
        }
        // Home and End move in the text; with nothing written, or with
        // Ctrl, they go to the start and the end of the conversation.
        KeyCode::Home if !ctrl && !input.is_empty() => input.home(),
        KeyCode::End if !ctrl && !input.is_empty() => input.end(),
        KeyCode::Home => ui.scroll_log(Scroll::home, areas),
        KeyCode::End => ui.follow(),
        KeyCode::Esc => input.clear(),
        KeyCode::PageUp => {
            let page = ui.page(areas);
            ui.scroll_log(|s, v| s.up(page, v), areas);
        }
        KeyCode::PageDown => {
            let page = ui.page(areas);
            ui.scroll_log(|s, v| s.down(page, v), areas);
        }
        KeyCode::Enter if !input.text().trim().is_empty() => return Action::Submit(input.take()),
        _ => {}
    }
    Action::None
}

impl Ui {
    /// Rows a page scrolls: the log's height less one kept for context.
    fn page(&self, areas: Areas) -> usize {
        usize::from(areas.log_text().height)
            .saturating_sub(1)
            .max(1)
    }

    /// Moves the log's scroll position with `step`.
    fn scroll_log(&mut self, step: impl FnOnce(&mut Scroll, View<'_>), areas: Areas) {
        let text = areas.log_text();
        let mut scroll = self.scroll;
        self.with_view(text.width.into(), text.height.into(), |view| {
            step(&mut scroll, view);
        });
        self.scroll = scroll;
        if !scroll.is_back() {
            self.follow();
        }
    }
}

/// The keys, for `/help`.
const KEYS: [&str; 11] = [
    "Enter          send",
    "Alt+Enter      new line (or Shift+Enter, Ctrl-J)",
    "Tab            complete a name after @ (again: the next one)",
    "Up/Down        recall what you sent",
    "PgUp/PgDn      scroll the conversation",
    "Ctrl-Home/End  its start / the newest",
    "Ctrl-←/→       a word left / right",
    "Ctrl-A/E       start / end of the line",
    "Ctrl-W/U/K     delete a word / to start / to end",
    "Esc            clear what you are writing",
    "Ctrl-C         leave",
];

/// Runs the terminal UI for `room` until the user leaves.
pub async fn run(
    engine: Engine,
    mut events: mpsc::UnboundedReceiver<Event>,
    room: &str,
    link: &str,
    relay_only: bool,
) -> Result<(), ChatError> {
    let (mut terminal, screen) = Screen::enter()?;
    let (key_tx, mut keys) = mpsc::unbounded_channel();
    // crossterm's reader blocks: give it a thread of its own.
    std::thread::spawn(move || {
        while let Ok(event) = event::read() {
            if key_tx.send(event).is_err() {
                break;
            }
        }
    });
    let mut ui = Ui::new(room, relay_only);
    ui.link = link.to_owned();
    // Redraws now and then, so typing notices run out on screen.
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let result = loop {
        if let Err(err) = terminal.draw(|frame| render(frame, &ui)) {
            break Err(err.into());
        }
        let screen = terminal.size().map_or(Rect::new(0, 0, 80, 24), |s| {
            Rect::new(0, 0, s.width, s.height)
        });
        tokio::select! {
            Some(event) = events.recv() => ui.apply(&event),
            Some(term) = keys.recv() => {
                let before = ui.input.text().len();
                let action = match term {
                    TermEvent::Key(key) => on_key(&mut ui, key, screen),
                    TermEvent::Paste(text) => {
                        ui.input.insert(&text);
                        Action::None
                    }
                    _ => continue,
                };
                match action {
                    Action::None => {
                        let text = ui.input.text();
                        if text.len() > before && !ui.awaiting_nick && !command::is_command(text) {
                            engine.typed();
                        }
                    }
                    Action::Quit => break Ok(()),
                    Action::Submit(text) => {
                        if submit(&mut ui, &engine, &text).await {
                            break Ok(());
                        }
                    }
                }
            }
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break Ok(()),
        }
    };
    drop(screen);
    engine.leave().await;
    result
}

/// The terminal in full-screen mode; dropping it (also when a panic
/// unwinds) puts the terminal back as it was.
#[derive(Debug)]
struct Screen {
    enhanced_keys: bool,
}

impl Screen {
    fn enter() -> Result<(ratatui::DefaultTerminal, Self), ChatError> {
        use ratatui::crossterm::event::{KeyboardEnhancementFlags, PushKeyboardEnhancementFlags};
        let terminal = ratatui::try_init()?;
        // Where the terminal can tell Shift+Enter from Enter (the kitty
        // keyboard protocol), ask it to.
        let enhanced_keys =
            ratatui::crossterm::terminal::supports_keyboard_enhancement().unwrap_or(false);
        let screen = Self { enhanced_keys };
        let mut out = std::io::stdout();
        if enhanced_keys {
            ratatui::crossterm::execute!(
                out,
                PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
            )?;
        }
        // Pasted text arrives whole, line breaks included, instead of as
        // keys (where a line break would send half of it).
        ratatui::crossterm::execute!(out, event::EnableBracketedPaste)?;
        Ok((terminal, screen))
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let mut out = std::io::stdout();
        let _ = ratatui::crossterm::execute!(out, event::DisableBracketedPaste);
        if self.enhanced_keys {
            let _ = ratatui::crossterm::execute!(out, event::PopKeyboardEnhancementFlags);
        }
        ratatui::restore();
    }
}

/// What an entered line asks of the engine.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// Nothing (what it asked for is done on screen).
    None,
    /// Send a message.
    Send(String),
    /// Join under this nickname.
    Join(String),
    /// Show how each member is reached.
    Peers,
    /// Clear the room's history.
    Clear,
    /// Show the safety number with a member.
    Verify(String),
    /// Mark a member verified.
    Verified(String),
    /// Write the history kept here to a file.
    Export(std::path::PathBuf),
    /// List the messages kept here that hold these words.
    Search(String),
    /// `/send`, `/accept`, `/cancel`.
    Files(Command),
    /// Send a private message to the member called this.
    Msg(String, String),
    /// Reply, react, edit, delete, name the room.
    About(peerchat_client::about::EntryKind, String, Option<String>),
    /// Take a new nickname.
    Rename(String),
    /// Leave.
    Quit,
}

impl Ui {
    /// Reads an entered line: a command, a message, or (after a refused
    /// join) a nickname. Errors show in the log; nothing mistyped goes to
    /// the room.
    fn entered(&mut self, text: &str) -> Request {
        let entry = match command::parse(text, Mode::Tui) {
            Ok(entry) => entry,
            Err(err) => {
                self.error(err.to_string());
                return Request::None;
            }
        };
        match entry {
            Entry::Command(Command::Quit) => Request::Quit,
            Entry::Command(Command::Nick(nick)) => Request::Rename(nick),
            Entry::Command(Command::Peers) => Request::Peers,
            Entry::Command(Command::Verify(nick)) => Request::Verify(nick),
            Entry::Command(Command::Verified(nick)) => Request::Verified(nick),
            Entry::Command(
                command @ (Command::Send(_) | Command::Accept(_) | Command::Cancel(_)),
            ) => Request::Files(command),
            Entry::Command(Command::Msg(nick, text)) => {
                self.follow();
                Request::Msg(nick, text)
            }
            Entry::Command(Command::Help) => {
                for line in command::help(Mode::Tui)
                    .into_iter()
                    .chain(KEYS.map(str::to_owned))
                {
                    self.notice(line);
                }
                Request::None
            }
            Entry::Command(Command::Qr) => {
                match crate::qr::lines(&self.link) {
                    Ok(lines) => self.qr = Some(lines),
                    Err(err) => self.error(err.to_string()),
                }
                Request::None
            }
            Entry::Command(Command::Export(path)) => Request::Export(path),
            Entry::Command(Command::Search(words)) => Request::Search(words),
            Entry::Command(Command::About { kind, text, nick }) => Request::About(kind, text, nick),
            Entry::Command(Command::Clear) => {
                self.log.clear();
                self.widest_author = 0;
                self.follow();
                self.notice("history cleared here; messages sent so far will not come back");
                Request::Clear
            }
            Entry::Message(text) if self.awaiting_nick => {
                let nick = text.trim();
                match peerchat_protocol::validate_nick(nick) {
                    Ok(()) => {
                        self.notice(format!("joining as {nick}…"));
                        Request::Join(nick.to_owned())
                    }
                    Err(err) => {
                        self.error(err.to_string());
                        Request::None
                    }
                }
            }
            Entry::Message(_) if self.me.is_none() => {
                self.error("not in the room yet; Up brings the text back");
                Request::None
            }
            Entry::Message(text) => {
                self.follow();
                Request::Send(text)
            }
        }
    }

    /// Shows the answer to `/peers`.
    fn peers(&mut self, stats: &[MemberStats]) {
        if stats.is_empty() {
            self.notice("nobody else is here yet");
        }
        for member in stats {
            self.notice(command::describe(member));
        }
    }
}

/// Handles an entered line; true means leave.
async fn submit(ui: &mut Ui, engine: &Engine, text: &str) -> bool {
    match ui.entered(text) {
        Request::None => {}
        Request::Quit => return true,
        Request::Send(text) => {
            if let Err(err) = engine.send(&text) {
                ui.error(format!("not sent: {err}"));
            }
        }
        Request::Join(nick) => engine.join(&nick),
        Request::Rename(nick) => engine.rename(&nick),
        Request::Files(command) => {
            for line in command::files(engine, &command).await {
                match line {
                    Ok(text) => ui.notice(text),
                    Err(text) => ui.error(text),
                }
            }
        }
        Request::Msg(nick, text) => {
            if let Err(err) = engine.send_private(&nick, &text).await {
                ui.error(format!("not sent: {err}"));
            }
        }
        Request::Peers => ui.peers(&engine.stats().await),
        Request::Clear => engine.clear_history(),
        Request::Verify(nick) => match engine.safety_number(&nick).await {
            Ok(safety) => {
                for line in command::safety_lines(&safety) {
                    ui.notice(line);
                }
            }
            Err(err) => ui.error(err.to_string()),
        },
        Request::About(kind, text, nick) => {
            if let Err(err) = engine.about(kind, &text, nick.as_deref()).await {
                ui.error(err.to_string());
            }
        }
        Request::Verified(nick) => match engine.mark_verified(&nick).await {
            Ok(member) => ui.notice(format!("{} is marked verified ✓", member.nick)),
            Err(err) => ui.error(err.to_string()),
        },
        Request::Export(path) => {
            let room = ui.room.clone();
            match crate::archive::write(&path, &room, &engine.messages().await) {
                Ok(n) => ui.notice(format!("exported {n} message(s) to {}", path.display())),
                Err(err) => ui.error(format!("could not export to {}: {err}", path.display())),
            }
        }
        Request::Search(words) => {
            for line in crate::archive::search_lines(&engine.messages().await, &words) {
                ui.notice(line);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use peerchat_client::engine::ServerState;

    fn peer(id: &str, nick: &str) -> Peer {
        Peer {
            id: id.into(),
            nick: nick.into(),
        }
    }

    fn screen(ui: &Ui, width: u16, height: u16) -> String {
        screen_at(ui, width, height, Instant::now())
    }

    fn screen_at(ui: &Ui, width: u16, height: u16, now: Instant) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| render_at(f, ui, now)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let mut text = String::new();
        for y in 0..height {
            for x in 0..width {
                text.push_str(buffer[(x, y)].symbol());
            }
            text.push('\n');
        }
        text
    }

    /// A key press on an 80×24 screen.
    fn press(ui: &mut Ui, key: KeyEvent) -> Action {
        on_key(ui, key, Rect::new(0, 0, 80, 24))
    }

    fn conversation() -> Ui {
        let mut ui = Ui::new("abcdefghijklmnopqrstuv", false);
        ui.apply(&Event::Server {
            state: ServerState::Online,
            retry_in_ms: None,
        });
        ui.apply(&Event::Joined {
            you: peer("1", "dora"),
            members: vec![peer("2", "alice")],
        });
        ui.apply(&Event::MemberJoined {
            member: peer("3", "bob"),
        });
        ui.apply(&Event::MemberState {
            member: peer("2", "alice"),
            state: LinkState::Connected,
        });
        ui.apply(&Event::Message(ChatMessage {
            id: "m1".into(),
            seq: 1,
            clock: 5,
            ts: 3_600_000 * 13 + 60_000 * 5,
            text: "hello from the browser".into(),
            from: peer("2", "alice"),
            own: false,
            stored: false,
            relayed_by: None,
            quote: None,
        }));
        ui
    }

    fn message(from: Peer, seq: u64, clock: u64, text: &str, own: bool) -> Event {
        Event::Message(ChatMessage {
            id: format!("m{seq}"),
            seq,
            clock,
            ts: 0,
            text: text.into(),
            from,
            own,
            stored: false,
            relayed_by: None,
            quote: None,
        })
    }

    #[test]
    fn private_messages_are_marked_and_keep_apart_from_the_room_order() {
        let mut ui = conversation();
        let Event::Message(mine) = message(peer("1", "dora"), 1, 9, "just for you", true) else {
            unreachable!()
        };
        let Event::Message(theirs) = message(peer("2", "alice"), 1, 1, "thanks", false) else {
            unreachable!()
        };
        let alice = peer("2", "alice");
        ui.apply(&Event::PrivateMessage {
            with: alice.clone(),
            message: mine.clone(),
        });
        ui.apply(&Event::PrivateMessage {
            with: alice.clone(),
            message: theirs.clone(),
        });
        ui.apply(&Event::PrivateMessage {
            with: alice.clone(),
            message: theirs,
        });
        // A room message with an older clock still lands before the room's
        // newer ones, not among the private ones.
        ui.apply(&message(peer("3", "bob"), 1, 2, "room, from before", false));
        let screen_text = screen(&ui, 80, 24);
        assert!(screen_text.contains("[private] you → alice: just for you  (sending…)"));
        assert!(screen_text.contains("[private] alice → you: thanks"));
        assert_eq!(screen_text.matches("thanks").count(), 1);
        let kinds: Vec<&str> = ui
            .log
            .iter()
            .filter_map(|e| match e {
                LogEntry::Message { text, .. } | LogEntry::Private { text, .. } => {
                    Some(text.as_str())
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "room, from before",
                "hello from the browser",
                "just for you",
                "thanks"
            ]
        );
        // Delivery of seq 1 to alice marks the private one, not dora's room
        // message 1.
        ui.apply(&message(peer("1", "dora"), 1, 10, "room mine", true));
        ui.apply(&Event::PrivateDelivery {
            with: alice,
            seq: 1,
        });
        let screen_text = screen(&ui, 80, 24);
        assert!(
            screen_text.contains("just for you  (✓ delivered)"),
            "{screen_text}"
        );
        assert!(
            screen_text.contains("room mine  (sending…)"),
            "{screen_text}"
        );
    }

    #[test]
    fn replies_quote_edits_deletions_and_reactions_redraw_and_the_room_name_heads_the_screen() {
        use peerchat_client::about::{Quote, Reaction, Shown};
        let mut ui = conversation();
        let Event::Message(mut reply) = message(peer("3", "bob"), 1, 6, "sure, at noon", false)
        else {
            unreachable!()
        };
        reply.quote = Some(Quote {
            author: "2".into(),
            nick: "alice".into(),
            seq: 1,
            text: "hello from the browser".into(),
        });
        ui.apply(&Event::Message(reply));
        assert!(screen(&ui, 80, 24).contains("↪ alice: hello from the browser"));
        ui.apply(&Event::Changed {
            author: peer("2", "alice"),
            seq: 1,
            shown: Shown {
                text: "hello from the terminal".into(),
                edited: true,
                deleted: false,
                reactions: vec![Reaction {
                    emoji: "+1".into(),
                    by: vec![("3".into(), "bob".into())],
                }],
            },
        });
        assert!(screen(&ui, 80, 24).contains("hello from the terminal (edited) [+1 bob]"));
        ui.apply(&Event::Changed {
            author: peer("3", "bob"),
            seq: 1,
            shown: Shown {
                text: String::new(),
                edited: false,
                deleted: true,
                reactions: Vec::new(),
            },
        });
        let shown = screen(&ui, 80, 24);
        assert!(shown.contains("(message deleted)"), "{shown}");
        ui.apply(&Event::RoomName {
            name: "Lunch crew".into(),
            by: peer("3", "bob"),
        });
        let shown = screen(&ui, 80, 24);
        assert!(
            shown.lines().next().unwrap().contains(" Lunch crew "),
            "{shown}"
        );
        assert!(shown.contains("bob named the room “Lunch crew”"), "{shown}");
    }

    #[test]
    fn late_history_lands_in_order_once_and_delivery_shows() {
        let mut ui = conversation();
        ui.apply(&message(peer("1", "dora"), 1, 6, "mine", true));
        // An older message from history, and a repeat of one already shown.
        ui.apply(&message(peer("3", "bob"), 1, 2, "from before", false));
        ui.apply(&message(peer("3", "bob"), 1, 2, "from before", false));
        let texts: Vec<&str> = ui
            .log
            .iter()
            .filter_map(|e| match e {
                LogEntry::Message { text, .. } => Some(text.as_str()),
                LogEntry::Private { .. } | LogEntry::Notice(_) | LogEntry::Error(_) => None,
            })
            .collect();
        assert_eq!(texts, ["from before", "hello from the browser", "mine"]);
        assert!(screen(&ui, 80, 24).contains("mine  (sending…)"));
        ui.apply(&Event::Delivery {
            seq: 1,
            delivered: vec![peer("2", "alice")],
            waiting: vec![peer("3", "bob")],
        });
        assert!(screen(&ui, 80, 24).contains("mine  (waiting for bob)"));
        ui.apply(&Event::Delivery {
            seq: 1,
            delivered: vec![peer("2", "alice"), peer("3", "bob")],
            waiting: vec![],
        });
        assert!(screen(&ui, 80, 24).contains("mine  (✓ delivered)"));
        ui.apply(&Event::Typing {
            member: peer("3", "bob"),
        });
        assert!(screen(&ui, 80, 24).contains("bob is typing…"));
        ui.apply(&message(peer("3", "bob"), 2, 7, "done", false));
        assert!(!screen(&ui, 80, 24).contains("typing"));
    }

    #[test]
    fn an_80x24_screen_shows_log_members_and_input() {
        let text = screen(&conversation(), 80, 24);
        assert!(text.contains("peerchat"), "{text}");
        assert!(text.contains("room abcdefgh…"), "{text}");
        assert!(text.contains("online"), "{text}");
        assert!(
            text.contains("13:05 alice: hello from the browser"),
            "{text}"
        );
        assert!(text.contains("* bob joined"), "{text}");
        assert!(text.contains("Members (3)"), "{text}");
        assert!(text.contains("dora (you)"), "{text}");
        assert!(text.contains("alice connected"), "{text}");
        assert!(text.contains("bob connecting"), "{text}");
        assert!(text.contains("Message (Enter sends"), "{text}");
    }

    #[test]
    fn departures_and_server_loss_show() {
        let mut ui = conversation();
        ui.apply(&Event::MemberLeft {
            member: peer("3", "bob"),
        });
        ui.apply(&Event::Server {
            state: ServerState::Offline,
            retry_in_ms: Some(2000),
        });
        let text = screen(&ui, 80, 24);
        assert!(text.contains("* bob left"), "{text}");
        assert!(!text.contains("bob connecting"), "{text}");
        assert!(text.contains("server unreachable"), "{text}");
        assert!(text.contains("Members (2)"), "{text}");
    }

    #[test]
    fn the_log_follows_the_bottom_and_scrolls_back() {
        let mut ui = conversation();
        for i in 0..100 {
            ui.notice(format!("line {i}"));
        }
        let text = screen(&ui, 80, 24);
        assert!(text.contains("line 99"), "{text}");
        assert!(!text.contains("line 50 "), "{text}");
        ui.scroll = Scroll::At { entry: 52, row: 0 };
        let text = screen(&ui, 80, 24);
        assert!(text.contains("line 49"), "{text}");
        assert!(!text.contains("line 99"), "{text}");
        assert!(text.contains("scrolled back"), "{text}");
    }

    fn long_text(i: usize) -> String {
        // Words of varied length, so word wrapping makes more lines than
        // dividing the width would.
        let words = [
            "internationalisation",
            "of",
            "conversations",
            "wrapped",
            "exactly",
        ];
        let mut text = format!("message {i}:");
        for n in 0..30 {
            text.push(' ');
            text.push_str(words[(n * 7 + i) % words.len()]);
        }
        text.push_str(&format!(" END{i}"));
        text
    }

    #[test]
    fn the_newest_of_long_messages_is_visible_and_scrolling_stops_at_both_ends() {
        let mut ui = conversation();
        for i in 0..6 {
            ui.apply(&message(
                peer("2", "alice"),
                10 + i as u64,
                10 + i as u64,
                &long_text(i),
                false,
            ));
        }
        let text = screen(&ui, 80, 24);
        assert!(text.contains("END5"), "{text}");
        let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
        // Far past the top, then one page down: the view moves at once.
        for _ in 0..50 {
            press(&mut ui, key(KeyCode::PageUp));
        }
        let top = screen(&ui, 80, 24);
        assert!(top.contains("* you joined as dora"), "{top}");
        press(&mut ui, key(KeyCode::PageDown));
        assert_ne!(screen(&ui, 80, 24), top);
        press(&mut ui, key(KeyCode::End));
        let text = screen(&ui, 80, 24);
        assert!(text.contains("END5"), "{text}");
        assert!(!text.contains("scrolled back"), "{text}");
        // At the bottom, PgDn stays there.
        press(&mut ui, key(KeyCode::PageDown));
        assert_eq!(screen(&ui, 80, 24), text);
    }

    fn typed(ui: &mut Ui, text: &str) {
        for c in text.chars() {
            press(ui, KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
    }

    fn keys(ui: &mut Ui, codes: &[KeyCode]) -> Action {
        let mut last = Action::None;
        for code in codes {
            last = press(ui, KeyEvent::new(*code, KeyModifiers::NONE));
        }
        last
    }

    fn ctrl(ui: &mut Ui, c: char) -> Action {
        press(ui, KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
    }

    #[test]
    fn the_input_line_edits_at_the_cursor_and_recalls_what_was_sent() {
        use KeyCode::{Backspace, Delete, Down, End, Enter, Home, Left, Right, Up};
        let mut ui = conversation();
        typed(&mut ui, "helo");
        keys(&mut ui, &[Left]);
        typed(&mut ui, "l");
        assert_eq!(keys(&mut ui, &[Enter]), Action::Submit("hello".into()));
        typed(&mut ui, "wrld");
        keys(&mut ui, &[Home]);
        typed(&mut ui, "> ");
        keys(&mut ui, &[Right, End, Left, Left, Left]);
        typed(&mut ui, "o");
        assert_eq!(keys(&mut ui, &[Enter]), Action::Submit("> world".into()));
        // Ctrl-A and Ctrl-E, Delete and Backspace at the cursor.
        typed(&mut ui, "bcX");
        ctrl(&mut ui, 'a');
        typed(&mut ui, "a");
        keys(&mut ui, &[Delete, Left]);
        ctrl(&mut ui, 'e');
        keys(&mut ui, &[Backspace]);
        assert_eq!(keys(&mut ui, &[Enter]), Action::Submit("ac".into()));
        // A combining sequence is one step of the cursor.
        typed(&mut ui, "e\u{301}x");
        keys(&mut ui, &[Left, Left]);
        typed(&mut ui, "a");
        assert_eq!(keys(&mut ui, &[Enter]), Action::Submit("ae\u{301}x".into()));
        // Up recalls what was sent, newest first; Down comes back to the
        // line being written.
        typed(&mut ui, "draft");
        keys(&mut ui, &[Up, Up, Up]);
        assert_eq!(keys(&mut ui, &[Enter]), Action::Submit("> world".into()));
        typed(&mut ui, "draft");
        keys(&mut ui, &[Up, Down]);
        assert_eq!(keys(&mut ui, &[Enter]), Action::Submit("draft".into()));
    }

    #[test]
    fn the_cursor_stands_after_wide_characters_by_their_width() {
        let mut ui = conversation();
        typed(&mut ui, "日本語 ok");
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|f| render(f, &ui)).unwrap();
        let at = terminal.get_cursor_position().unwrap();
        // Inside the border: 3 wide characters, a space and two letters.
        assert_eq!(at.x, 1 + 6 + 3);
        press(&mut ui, KeyEvent::new(KeyCode::Left, KeyModifiers::NONE));
        press(&mut ui, KeyEvent::new(KeyCode::Left, KeyModifiers::NONE));
        press(&mut ui, KeyEvent::new(KeyCode::Left, KeyModifiers::NONE));
        terminal.draw(|f| render(f, &ui)).unwrap();
        assert_eq!(terminal.get_cursor_position().unwrap().x, 1 + 6);
    }

    #[test]
    fn a_long_input_grows_the_box_and_keeps_the_cursor_in_view() {
        let mut ui = conversation();
        typed(&mut ui, &"0123456789".repeat(60));
        let text = screen(&ui, 80, 24);
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|f| render(f, &ui)).unwrap();
        // Five rows of 78 columns inside the border (of the eight the text
        // takes), the last with the cursor after the 600th character.
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[17].contains("Message (Enter"), "{text}");
        for row in &lines[18..23] {
            let digits = row.trim_matches('│').trim_end();
            assert!(digits.chars().all(|c| c.is_ascii_digit()), "{text}");
        }
        assert_eq!(
            terminal.get_cursor_position().unwrap(),
            Position::new(1 + 600 % 78, 22)
        );
        // Home goes to the start: the first row shows.
        press(&mut ui, KeyEvent::new(KeyCode::Home, KeyModifiers::NONE));
        terminal.draw(|f| render(f, &ui)).unwrap();
        assert_eq!(
            terminal.get_cursor_position().unwrap(),
            Position::new(1, 18)
        );
    }

    #[test]
    fn messages_keep_their_line_breaks_and_wrap_under_the_text_column() {
        let mut ui = conversation();
        ui.apply(&message(
            peer("2", "alice"),
            2,
            6,
            "line one\nline two",
            false,
        ));
        ui.apply(&message(
            peer("1", "dora"),
            1,
            7,
            "a reply long enough to wrap onto a second row of the log, which is narrow",
            true,
        ));
        let text = screen(&ui, 80, 24);
        let rows: Vec<&str> = text
            .lines()
            .map(|l| l.split('│').nth(1).unwrap_or("").trim_end())
            .collect();
        let at = rows
            .iter()
            .position(|r| r.contains("alice: line one"))
            .expect(&text);
        // The text column: after the time and the widest name, "alice: ".
        assert_eq!(rows[at], "00:00 alice: line one");
        assert_eq!(rows[at + 1], "             line two");
        assert_eq!(
            rows[at + 2],
            "00:00   you: a reply long enough to wrap onto a second row"
        );
        assert_eq!(
            rows[at + 3],
            "             of the log, which is narrow  (sending…)"
        );
    }

    #[test]
    fn alt_enter_and_ctrl_j_start_a_new_line() {
        let mut ui = conversation();
        typed(&mut ui, "one");
        press(&mut ui, KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT));
        typed(&mut ui, "two");
        ctrl(&mut ui, 'j');
        typed(&mut ui, "three");
        let text = screen(&ui, 80, 24);
        assert!(text.contains("│one "), "{text}");
        assert!(text.contains("│two "), "{text}");
        assert!(text.contains("│three "), "{text}");
        assert_eq!(
            keys(&mut ui, &[KeyCode::Enter]),
            Action::Submit("one\ntwo\nthree".into())
        );
    }

    #[test]
    fn renames_show_in_the_log_and_the_member_list() {
        let mut ui = conversation();
        ui.apply(&Event::MemberRenamed {
            member: peer("2", "ally"),
            old: "alice".into(),
        });
        ui.apply(&Event::MemberState {
            member: peer("2", "ally"),
            state: LinkState::Connected,
        });
        ui.apply(&Event::Renamed {
            you: peer("1", "dee"),
            old: "dora".into(),
        });
        ui.apply(&Event::RenameRefused {
            code: peerchat_protocol::ErrorCode::NickTaken,
            message: "the nickname \"bob\" is taken in this room; pick another".into(),
        });
        let text = screen(&ui, 100, 30);
        assert!(text.contains("alice is now ally"), "{text}");
        assert!(text.contains("you are now dee"), "{text}");
        assert!(
            text.contains("not renamed: the nickname \"bob\" is taken"),
            "{text}"
        );
        let listed: Vec<&str> = ui.members.iter().map(|(m, _)| m.nick.as_str()).collect();
        assert_eq!(listed, ["ally", "bob"]);
        assert_eq!(ui.me.as_ref().map(|m| m.nick.as_str()), Some("dee"));
    }

    #[test]
    fn mistyped_commands_stay_here_and_a_double_slash_sends_one() {
        let mut ui = conversation();
        assert_eq!(ui.entered("/bogus"), Request::None);
        assert_eq!(ui.entered("/nick dora2"), Request::Rename("dora2".into()));
        assert_eq!(ui.entered("/peres"), Request::None);
        let text = screen(&ui, 100, 30);
        assert!(text.contains("! unknown command /bogus"), "{text}");
        assert!(text.contains("did you mean /peers?"), "{text}");
        assert_eq!(ui.entered("//shrug"), Request::Send("/shrug".into()));
        assert_eq!(ui.entered("hello"), Request::Send("hello".into()));
        assert_eq!(ui.entered("/peers"), Request::Peers);
        assert_eq!(ui.entered("/quit"), Request::Quit);
        assert_eq!(ui.entered("/help"), Request::None);
        let text = screen(&ui, 100, 60);
        assert!(text.contains("* /clear"), "{text}");
        assert!(
            text.contains("* //text sends text starting with /"),
            "{text}"
        );
        assert_eq!(ui.entered("/clear"), Request::Clear);
        assert!(!screen(&ui, 100, 30).contains("hello from the browser"));
        // Waiting for a nickname, commands still work.
        let mut ui = Ui::new("r", false);
        ui.awaiting_nick = true;
        assert_eq!(ui.entered("/quit"), Request::Quit);
        assert_eq!(ui.entered(" dora2 "), Request::Join("dora2".into()));
    }

    fn server(state: ServerState, retry_in_ms: Option<u64>) -> Event {
        Event::Server { state, retry_in_ms }
    }

    fn notices(ui: &Ui) -> Vec<&str> {
        ui.log
            .iter()
            .filter_map(|e| match e {
                LogEntry::Notice(text) | LogEntry::Error(text) => Some(text.as_str()),
                LogEntry::Message { .. } | LogEntry::Private { .. } => None,
            })
            .collect()
    }

    #[test]
    fn retries_show_in_the_status_line_and_the_log_says_once_lost_and_once_back() {
        let now = Instant::now();
        let mut ui = Ui::new("abcdefghijklmnopqrstuv", false);
        // Before joining: the server does not answer, three times.
        for retry in [1000, 2000, 4000] {
            ui.apply_at(&server(ServerState::Connecting, None), now);
            ui.apply_at(&server(ServerState::Offline, Some(retry)), now);
        }
        assert_eq!(notices(&ui).len(), 1, "{:?}", notices(&ui));
        let text = screen_at(&ui, 80, 24, now);
        assert!(
            text.contains("● server unreachable, retrying in 4s"),
            "{text}"
        );
        let later = now + std::time::Duration::from_millis(2500);
        let text = screen_at(&ui, 80, 24, later);
        assert!(text.contains("retrying in 2s"), "{text}");
        ui.apply_at(&server(ServerState::Connecting, None), now);
        ui.apply_at(&server(ServerState::Online, None), now);
        ui.apply_at(
            &Event::Joined {
                you: peer("1", "dora"),
                members: vec![],
            },
            now,
        );
        let text = screen_at(&ui, 80, 24, now);
        assert!(text.contains("● online"), "{text}");
        assert!(!text.contains("retrying"), "{text}");
        // Lost once joined: said once, and once when it is back.
        let before = notices(&ui).len();
        for retry in [1000, 2000] {
            ui.apply_at(&server(ServerState::Offline, Some(retry)), now);
            ui.apply_at(&server(ServerState::Connecting, None), now);
        }
        ui.apply_at(&server(ServerState::Offline, Some(3000)), now);
        assert_eq!(notices(&ui).len(), before + 1, "{:?}", notices(&ui));
        ui.apply_at(&server(ServerState::Connecting, None), now);
        ui.apply_at(&server(ServerState::Online, None), now);
        let said = notices(&ui);
        assert_eq!(said.len(), before + 2, "{said:?}");
        assert_eq!(said[before + 1], "connected to the server again");
    }

    #[test]
    fn a_narrow_terminal_gives_the_members_room_to_the_log() {
        let text = screen(&conversation(), 50, 20);
        assert!(text.contains("3 here"), "{text}");
        assert!(!text.contains("Members"), "{text}");
        assert!(text.contains("alice: hello from the"), "{text}");
        let text = screen(&conversation(), 80, 24);
        assert!(text.contains("Members (3)"), "{text}");
        assert!(!text.contains("3 here"), "{text}");
    }

    #[test]
    fn keys_edit_submit_and_quit() {
        let mut ui = Ui::new("r", false);
        let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
        for c in "hi!".chars() {
            assert_eq!(press(&mut ui, key(KeyCode::Char(c))), Action::None);
        }
        press(&mut ui, key(KeyCode::Backspace));
        assert_eq!(
            press(&mut ui, key(KeyCode::Enter)),
            Action::Submit("hi".into())
        );
        assert_eq!(ui.input.text(), "");
        assert_eq!(press(&mut ui, key(KeyCode::Enter)), Action::None);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(press(&mut ui, ctrl_c), Action::Quit);
    }

    #[test]
    fn mentions_are_highlighted_and_tab_completes_names() {
        let mut ui = conversation();
        ui.apply(&Event::MemberJoined {
            member: peer("4", "albert"),
        });
        ui.apply(&message(
            peer("2", "alice"),
            2,
            9,
            "hey @DORA and @bob",
            false,
        ));
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|f| render(f, &ui)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let styled = |word: &str| {
            (0..24u16)
                .find_map(|y| {
                    let row: String = (0..80u16)
                        .map(|x| buffer[(x, y)].symbol().to_owned())
                        .collect();
                    row.find(word).map(|i| {
                        let x = u16::try_from(row[..i].chars().count()).unwrap();
                        (buffer[(x, y)].fg, buffer[(x, y)].bg)
                    })
                })
                .unwrap()
        };
        assert_eq!(styled("@DORA"), (Color::Black, Color::Yellow), "ours");
        assert_eq!(styled("@bob").0, Color::Cyan);
        // Tab puts in the shortest name that fits, Tab again the next.
        typed(&mut ui, "hi @AL");
        press(&mut ui, KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
        assert_eq!(ui.input.text(), "hi @alice ");
        press(&mut ui, KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
        assert_eq!(ui.input.text(), "hi @albert ");
        typed(&mut ui, "x");
        press(&mut ui, KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
        assert_eq!(ui.input.text(), "hi @albert x", "nothing to complete");
    }

    #[test]
    fn the_qr_code_shows_over_everything_until_a_key() {
        let mut ui = conversation();
        ui.link = format!("http://127.0.0.1:8080/r/{}", "A".repeat(22));
        assert_eq!(ui.entered("/qr"), Request::None);
        let text = screen(&ui, 80, 24);
        assert!(
            text.contains("scan it to open the room on a phone"),
            "{text}"
        );
        assert!(text.contains("████"), "{text}");
        assert!(!text.contains("Members"), "{text}");
        press(&mut ui, KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        assert!(screen(&ui, 80, 24).contains("Members (3)"));
        // Too small a terminal: the link, written out.
        ui.entered("/qr");
        let text = screen(&ui, 60, 12);
        assert!(text.contains("127.0.0.1:8080/r/AAAA"), "{text}");
    }

    #[test]
    fn a_refused_join_asks_for_another_nickname() {
        let mut ui = Ui::new("r", false);
        ui.apply(&Event::JoinRefused {
            code: peerchat_protocol::ErrorCode::NickTaken,
            message: "the nickname \"dora\" is taken in this room; pick another".into(),
        });
        let text = screen(&ui, 80, 24);
        assert!(text.contains("could not join"), "{text}");
        assert!(text.contains("Nickname (Enter to join"), "{text}");
    }
}
