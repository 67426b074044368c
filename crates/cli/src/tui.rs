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
use ratatui::layout::{Constraint, Layout, Position};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, Paragraph, Wrap};
use tokio::sync::mpsc;

use crate::ChatError;
use peerchat_client::engine::{ChatMessage, Engine, Event, Peer, ServerState};
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
        /// For our messages: where delivery stands.
        status: Option<String>,
    },
    /// A notice: joins, departures, errors, connection details.
    Notice(String),
}

/// Everything the screen shows.
#[derive(Debug, Clone)]
pub struct Ui {
    /// The room id.
    pub room: String,
    /// Ourselves, once joined.
    pub me: Option<Peer>,
    /// The signaling connection.
    pub server: ServerState,
    /// The other members and our connection to each.
    pub members: Vec<(Peer, LinkState)>,
    /// The chat log, oldest first.
    pub log: Vec<LogEntry>,
    /// The input line.
    pub input: String,
    /// How many lines the log is scrolled back from the bottom.
    pub scroll_back: u16,
    /// Relay-only mode is on.
    pub relay_only: bool,
    /// The join was refused: the input line asks for a nickname.
    pub awaiting_nick: bool,
    /// Who is typing, until when.
    pub typing: Vec<(Peer, std::time::Instant)>,
}

impl Ui {
    /// An empty screen for `room`.
    pub fn new(room: &str, relay_only: bool) -> Self {
        Self {
            room: room.to_owned(),
            me: None,
            server: ServerState::Connecting,
            members: Vec::new(),
            log: Vec::new(),
            input: String::new(),
            scroll_back: 0,
            relay_only,
            awaiting_nick: false,
            typing: Vec::new(),
        }
    }

    fn notice(&mut self, text: impl Into<String>) {
        self.log.push(LogEntry::Notice(text.into()));
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
        let status = m.own.then(|| {
            if self.members.is_empty() {
                "sent".to_owned()
            } else {
                "sending…".to_owned()
            }
        });
        self.log.insert(
            at,
            LogEntry::Message {
                time: clock(m.ts),
                author: if m.own {
                    "you".into()
                } else {
                    m.from.nick.clone()
                },
                own: m.own,
                text: m.text.clone(),
                key,
                status,
            },
        );
    }

    /// Who is typing now.
    pub fn typing_now(&self, now: std::time::Instant) -> Vec<&str> {
        self.typing
            .iter()
            .filter(|(_, until)| *until > now)
            .map(|(p, _)| p.nick.as_str())
            .collect()
    }

    /// Updates the screen from an engine event.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Server { state, retry_in_ms } => {
                if *state == ServerState::Offline && self.server != ServerState::Offline {
                    self.notice(format!(
                        "server unreachable, retrying in {}s; connected members can still chat",
                        retry_in_ms.unwrap_or(0).div_ceil(1000)
                    ));
                }
                self.server = *state;
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
            Event::MemberState { member, state } => {
                match self.members.iter_mut().find(|(m, _)| m.nick == member.nick) {
                    Some(entry) => *entry = (member.clone(), *state),
                    None => self.members.push((member.clone(), *state)),
                }
            }
            Event::Message(m) => self.message(m),
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
                let until = std::time::Instant::now() + std::time::Duration::from_secs(6);
                self.typing.retain(|(p, _)| p.id != member.id);
                self.typing.push((member.clone(), until));
            }
            // Pairs run in line mode.
            Event::ConnectionCode { .. } | Event::CodeWanted { .. } => {}
            Event::PairingFailed { message } => self.notice(message.clone()),
        }
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
        LinkState::Connecting | LinkState::Reconnecting => Color::Yellow,
    };
    (color, state.as_str())
}

/// Draws the screen.
pub fn render(frame: &mut Frame, ui: &Ui) {
    let [top, body, input_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(3),
    ])
    .areas(frame.area());
    let [log_area, members_area] =
        Layout::horizontal([Constraint::Min(20), Constraint::Length(26)]).areas(body);

    let (server_color, server_text) = match ui.server {
        ServerState::Online => (Color::Green, "online"),
        ServerState::Connecting => (Color::Yellow, "connecting"),
        ServerState::Offline => (Color::Red, "server unreachable"),
    };
    let short: String = ui.room.chars().take(8).collect();
    let mut title = vec![
        Span::styled(
            " peerchat ",
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::raw(format!(" room {short}… ")),
        Span::styled(format!("● {server_text}"), Style::new().fg(server_color)),
    ];
    if ui.relay_only {
        title.push(Span::styled("  IP hidden", Style::new().fg(Color::Magenta)));
    }
    frame.render_widget(Paragraph::new(Line::from(title)), top);

    let lines: Vec<Line> = ui
        .log
        .iter()
        .map(|entry| match entry {
            LogEntry::Message {
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
                let mut spans = vec![
                    Span::styled(format!("{time} "), Style::new().dim()),
                    Span::styled(format!("{author}: "), author_style),
                    Span::raw(text.clone()),
                ];
                if let Some(status) = status {
                    spans.push(Span::styled(format!("  ({status})"), Style::new().dim()));
                }
                Line::from(spans)
            }
            LogEntry::Notice(text) => Line::from(Span::styled(
                format!("* {text}"),
                Style::new().dim().italic(),
            )),
        })
        .collect();
    let inner_width = log_area.width.saturating_sub(2).max(1) as usize;
    let inner_height = log_area.height.saturating_sub(2);
    let total: usize = lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(inner_width))
        .sum();
    let total = u16::try_from(total).unwrap_or(u16::MAX);
    let bottom = total.saturating_sub(inner_height);
    let offset = bottom.saturating_sub(ui.scroll_back);
    let log_title = if ui.scroll_back > 0 {
        " Chat (scrolled back: PgDn) ".to_owned()
    } else {
        " Chat ".to_owned()
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((offset, 0))
            .block(Block::bordered().title(log_title)),
        log_area,
    );

    let mut items = Vec::new();
    if let Some(me) = &ui.me {
        items.push(ListItem::new(Line::from(vec![
            Span::styled("● ", Style::new().fg(Color::Blue)),
            Span::styled(me.nick.clone(), Style::new().bold()),
            Span::styled(" (you)", Style::new().dim()),
        ])));
    }
    for (peer, state) in &ui.members {
        let (color, label) = state_style(*state);
        items.push(ListItem::new(Line::from(vec![
            Span::styled("● ", Style::new().fg(color)),
            Span::raw(peer.nick.clone()),
            Span::styled(format!(" {label}"), Style::new().dim()),
        ])));
    }
    let count = items.len();
    frame.render_widget(
        List::new(items).block(Block::bordered().title(format!(" Members ({count}) "))),
        members_area,
    );

    let typing = ui.typing_now(std::time::Instant::now());
    let typing_title = match typing.as_slice() {
        [] => String::new(),
        [one] => format!(" {one} is typing… "),
        many => format!(" {} are typing… ", many.join(", ")),
    };
    let prompt = if ui.awaiting_nick {
        " Nickname (Enter to join, Ctrl-C to quit) "
    } else {
        " Message (Enter sends, Ctrl-C leaves, /help) "
    };
    let visible = input_area.width.saturating_sub(3) as usize;
    let chars: Vec<char> = ui.input.chars().collect();
    let start = chars.len().saturating_sub(visible);
    let shown: String = chars[start..].iter().collect();
    let cursor_x = input_area.x + 1 + u16::try_from(shown.chars().count()).unwrap_or(0);
    frame.render_widget(
        Paragraph::new(shown).block(
            Block::bordered()
                .title(prompt)
                .title_bottom(Line::from(typing_title).style(Style::new().italic().dim())),
        ),
        input_area,
    );
    frame.set_cursor_position(Position::new(cursor_x, input_area.y + 1));
}

/// What a key press asks for.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    None,
    Submit(String),
    Quit,
}

fn on_key(ui: &mut Ui, key: KeyEvent, page: u16) -> Action {
    if key.kind == KeyEventKind::Release {
        return Action::None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c') if ctrl => return Action::Quit,
        KeyCode::Char('d') if ctrl && ui.input.is_empty() => return Action::Quit,
        KeyCode::Char('u') if ctrl => ui.input.clear(),
        KeyCode::Char(c) if !ctrl => ui.input.push(c),
        KeyCode::Backspace => {
            ui.input.pop();
        }
        KeyCode::Esc => ui.input.clear(),
        KeyCode::PageUp => ui.scroll_back = ui.scroll_back.saturating_add(page),
        KeyCode::PageDown => ui.scroll_back = ui.scroll_back.saturating_sub(page),
        KeyCode::End => ui.scroll_back = 0,
        KeyCode::Enter => {
            let text = std::mem::take(&mut ui.input);
            if !text.trim().is_empty() {
                return Action::Submit(text);
            }
        }
        _ => {}
    }
    Action::None
}

const HELP: &[&str] = &[
    "Enter sends; PgUp/PgDn scroll; Ctrl-U clears the line; Ctrl-C leaves",
    "/peers  how you reach each member: route, round trip, bytes",
    "/clear  clear this room's history here (it does not come back)",
    "/quit   leave the room",
];

/// Runs the terminal UI for `room` until the user leaves.
pub async fn run(
    engine: Engine,
    mut events: mpsc::UnboundedReceiver<Event>,
    room: &str,
    relay_only: bool,
) -> Result<(), ChatError> {
    let mut terminal = ratatui::try_init()?;
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
    // Redraws now and then, so typing notices run out on screen.
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let result = loop {
        if let Err(err) = terminal.draw(|frame| render(frame, &ui)) {
            break Err(err.into());
        }
        let page = terminal
            .size()
            .map_or(10, |s| s.height.saturating_sub(8).max(1));
        tokio::select! {
            Some(event) = events.recv() => ui.apply(&event),
            Some(term) = keys.recv() => {
                let TermEvent::Key(key) = term else { continue };
                let before = ui.input.len();
                match on_key(&mut ui, key, page) {
                    Action::None => {
                        if ui.input.len() > before && !ui.awaiting_nick {
                            engine.typed();
                        }
                    }
                    Action::Quit => break Ok(()),
                    Action::Submit(text) => {
                        if submit(&mut ui, &engine, text).await {
                            break Ok(());
                        }
                    }
                }
            }
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break Ok(()),
        }
    };
    ratatui::restore();
    engine.leave().await;
    result
}

/// Handles an entered line; true means leave.
async fn submit(ui: &mut Ui, engine: &Engine, text: String) -> bool {
    if ui.awaiting_nick {
        match peerchat_protocol::validate_nick(text.trim()) {
            Ok(()) => {
                ui.notice(format!("joining as {}…", text.trim()));
                engine.join(text.trim());
            }
            Err(err) => ui.notice(err.to_string()),
        }
        return false;
    }
    match text.trim() {
        "/quit" => return true,
        "/clear" => {
            engine.clear_history();
            ui.log.clear();
            ui.notice("history cleared here; messages sent so far will not come back");
            return false;
        }
        "/help" => {
            for line in HELP {
                ui.notice(*line);
            }
            return false;
        }
        "/peers" => {
            let stats = engine.stats().await;
            if stats.is_empty() {
                ui.notice("nobody else is here yet");
            }
            for s in stats {
                let line = match s.stats {
                    Some(st) => format!(
                        "{}: {} ({} ↔ {}), round trip {}, sent {} B, received {} B",
                        s.member.nick,
                        if st.relayed() { "relayed" } else { "direct" },
                        st.local,
                        st.remote,
                        st.rtt_ms.map_or("–".to_owned(), |ms| format!("{ms:.1} ms")),
                        st.bytes_sent,
                        st.bytes_received
                    ),
                    None => format!("{}: {}", s.member.nick, state_style(s.state).1),
                };
                ui.notice(line);
            }
            return false;
        }
        _ => {}
    }
    if ui.me.is_none() {
        ui.notice("not in the room yet");
        return false;
    }
    match engine.send(&text) {
        Ok(()) => ui.scroll_back = 0,
        Err(err) => ui.notice(format!("not sent: {err}")),
    }
    false
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;

    fn peer(id: &str, nick: &str) -> Peer {
        Peer {
            id: id.into(),
            nick: nick.into(),
        }
    }

    fn screen(ui: &Ui, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| render(f, ui)).unwrap();
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
        })
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
                LogEntry::Notice(_) => None,
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
        ui.scroll_back = 50;
        let text = screen(&ui, 80, 24);
        assert!(text.contains("line 49"), "{text}");
        assert!(!text.contains("line 99"), "{text}");
        assert!(text.contains("scrolled back"), "{text}");
    }

    #[test]
    fn keys_edit_submit_and_quit() {
        let mut ui = Ui::new("r", false);
        let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
        for c in "hi!".chars() {
            assert_eq!(on_key(&mut ui, key(KeyCode::Char(c)), 10), Action::None);
        }
        on_key(&mut ui, key(KeyCode::Backspace), 10);
        assert_eq!(
            on_key(&mut ui, key(KeyCode::Enter), 10),
            Action::Submit("hi".into())
        );
        assert_eq!(ui.input, "");
        assert_eq!(on_key(&mut ui, key(KeyCode::Enter), 10), Action::None);
        on_key(&mut ui, key(KeyCode::PageUp), 10);
        assert_eq!(ui.scroll_back, 10);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(on_key(&mut ui, ctrl_c, 10), Action::Quit);
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
