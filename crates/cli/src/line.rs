//! Line mode, for scripts and bots: each line of standard input is sent as
//! a message; each message received is printed on standard output as
//! `nick: text` (or, with `--json`, every event as one JSON object per
//! line); notices go to standard error. At the end of input (or `/quit`),
//! pending messages are delivered before leaving.
//!
//! A line starting with `/` and a letter is a command (`/help`, `/peers`,
//! `/clear`, `/quit`; see [`crate::command`]), never a message: an unknown
//! one is an error on standard error. `//` at the start sends one `/`.

use std::io::Write;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};
use tokio::sync::mpsc;

use crate::ChatError;
use crate::command::{self, Command, Entry, Mode};
use crate::status::ServerStatus;
use peerchat_client::engine::{Engine, Event};
use peerchat_client::pair::{Code, CodeKind};

/// How events are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `nick: text` on standard output, notices on standard error.
    Plain,
    /// One JSON object per event on standard output.
    Json,
}

/// Escapes a message so it stays on one line: backslash, newline, carriage
/// return and other control characters become escapes (`\\`, `\n`, `\r`,
/// `\u{7}`).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// How an event reads as a notice in plain mode, if it is one.
fn notice(event: &Event) -> Option<String> {
    Some(match event {
        // Told once lost and once back, by `Printer`.
        Event::Server { .. } => return None,
        Event::Joined { you, members } if members.is_empty() => {
            format!("joined as {}; nobody else is here yet", you.nick)
        }
        Event::Joined { you, members } => format!(
            "joined as {}; here: {}",
            you.nick,
            members
                .iter()
                .map(|m| m.nick.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Event::JoinRefused { message, .. } => format!("could not join: {message}"),
        Event::MemberJoined { member } => format!("{} joined", member.nick),
        Event::MemberLeft { member } => format!("{} left", member.nick),
        Event::MemberRenamed { member, old } => format!("{old} is now {}", member.nick),
        Event::Renamed { you, .. } => format!("you are now {}", you.nick),
        Event::RenameRefused { message, .. } => format!("not renamed: {message}"),
        Event::MemberState { member, state } => format!("{} is {}", member.nick, state.as_str()),
        Event::SignalRefused { message, .. } => message.clone(),
        Event::NotVerified { member, reason } => format!(
            "could not verify {}: {reason}; the connection was closed",
            member.nick
        ),
        Event::KeyChanged { member } => format!(
            "{}'s safety number has changed: they use another identity key than before \
             (a new device, or someone else); compare it again with /verify {}",
            member.nick, member.nick
        ),
        Event::MemberIdentity { .. } | Event::MessageVerified { .. } => return None,
        Event::Forged { author, by, count } if author.id == by.id => format!(
            "{count} message(s) from {} refused: the signature does not match their key",
            author.nick
        ),
        Event::Forged { author, by, count } => format!(
            "{count} message(s) attributed to {}, relayed by {}, refused: {} did not sign them",
            author.nick, by.nick, author.nick
        ),
        Event::MessageRemoved { author, by, .. } => format!(
            "a message attributed to {}, relayed by {}, was forged and has been removed",
            author.nick, by.nick
        ),
        Event::FileOffered { .. }
        | Event::FileSaved { .. }
        | Event::FileFailed { .. }
        | Event::FileWithdrawn { .. } => {
            return command::file_notice(event);
        }
        Event::Changed { author, shown, .. } => crate::conversation::changed_line(author, shown),
        Event::RoomName { name, by } if name.is_empty() => {
            format!("{} cleared the room's name", by.nick)
        }
        Event::RoomName { name, by } => format!("{} named the room “{name}”", by.nick),
        Event::Message(_)
        | Event::FileProgress { .. }
        | Event::PrivateMessage { .. }
        | Event::PrivateDelivery { .. }
        | Event::Delivery { .. }
        | Event::Typing { .. }
        | Event::ConnectionCode { .. }
        | Event::CodeWanted { .. }
        | Event::PairingFailed { .. } => return None,
        Event::CodeRefused { message } => format!("{message}; paste it again"),
    })
}

/// Pairing by hand: our code, or the prompt for theirs, on standard output.
fn prompt(event: &Event) {
    let text = match event {
        Event::ConnectionCode {
            kind: CodeKind::Offer,
            code,
        } => format!("Send this connection code to the other side:\n\n{code}\n"),
        Event::ConnectionCode {
            kind: CodeKind::Answer,
            code,
        } => format!("Send this answer back to the other side:\n\n{code}\n"),
        Event::CodeWanted {
            kind: CodeKind::Answer,
        } => "Then paste their answer here and press Enter:".to_owned(),
        Event::CodeWanted {
            kind: CodeKind::Offer,
        } => "Paste the connection code from the other side and press Enter:".to_owned(),
        _ => return,
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Prints events as they come.
#[derive(Debug)]
struct Printer {
    mode: Output,
    server: ServerStatus,
}

impl Printer {
    fn new(mode: Output) -> Self {
        Self {
            mode,
            server: ServerStatus::default(),
        }
    }

    fn print(&mut self, event: &Event) {
        if let Event::Server { state, retry_in_ms } = event {
            let change = self.server.update(*state, *retry_in_ms, Instant::now());
            if let (Some(change), Output::Plain) = (change, self.mode) {
                eprintln!("* {}", change.text());
            }
        }
        print(event, self.mode);
    }
}

fn print(event: &Event, mode: Output) {
    match mode {
        // An earlier run printed these already.
        Output::Json if matches!(event, Event::Message(m) | Event::PrivateMessage { message: m, .. } if m.stored) =>
            {}
        Output::Json => {
            if let Ok(json) = serde_json::to_string(event) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{json}");
                let _ = out.flush();
            }
        }
        Output::Plain => match event {
            // What we typed is on the terminal already; what an earlier run
            // printed is not printed again.
            Event::Message(m) if m.own || m.stored => {}
            Event::Message(m) => {
                let mut out = std::io::stdout().lock();
                let quote = m
                    .quote
                    .as_ref()
                    .map(|q| format!(" (↪ {})", escape(&crate::conversation::quote_line(q))))
                    .unwrap_or_default();
                let _ = writeln!(out, "{}{quote}: {}", escape(&m.from.nick), escape(&m.text));
                let _ = out.flush();
            }
            Event::PrivateMessage { message: m, .. } if m.own || m.stored => {}
            Event::PrivateMessage { message: m, .. } => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "[private] {}: {}",
                    escape(&m.from.nick),
                    escape(&m.text)
                );
                let _ = out.flush();
            }
            Event::ConnectionCode { .. } | Event::CodeWanted { .. } => prompt(event),
            other => {
                if let Some(text) = notice(other) {
                    eprintln!("* {}", escape(&text));
                }
            }
        },
    }
}

/// Reads the other side's connection code from standard input (blank
/// lines skipped, a bad code asked again) and hands it to the engine.
async fn paste(
    engine: &Engine,
    lines: &mut Lines<BufReader<Stdin>>,
    kind: CodeKind,
) -> Result<(), ChatError> {
    loop {
        let line = lines.next_line().await?.ok_or_else(|| {
            ChatError::Pairing("standard input ended before a connection code arrived".into())
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match Code::parse(&line).and_then(|c| c.expect(kind)) {
            Ok(code) => {
                engine.paste_code(code);
                return Ok(());
            }
            Err(err) => eprintln!("* {err}; paste it again"),
        }
    }
}

/// Waits for the event `until` accepts, printing events and reading
/// connection codes as they are wanted.
async fn wait_for(
    engine: &Engine,
    events: &mut mpsc::UnboundedReceiver<Event>,
    lines: &mut Lines<BufReader<Stdin>>,
    out: &mut Printer,
    until: impl Fn(&Event) -> bool,
) -> Result<bool, ChatError> {
    loop {
        let Some(event) = events.recv().await else {
            return Ok(false);
        };
        out.print(&event);
        match event {
            Event::JoinRefused { code, message } => {
                engine.leave().await;
                return Err(ChatError::JoinRefused { code, message });
            }
            Event::PairingFailed { message } => {
                engine.leave().await;
                return Err(ChatError::Pairing(message));
            }
            Event::CodeWanted { kind } => paste(engine, lines, kind).await?,
            ref event if until(event) => return Ok(true),
            _ => {}
        }
    }
}

/// Runs line mode until standard input ends (or Ctrl-C). With
/// `until_connected` (pairing by hand, when standard input first carries
/// the other side's code), messages are read only once a member is
/// connected.
pub async fn run(
    engine: Engine,
    mut events: mpsc::UnboundedReceiver<Event>,
    mode: Output,
    linger: Duration,
    until_connected: bool,
    room: Option<(String, String)>,
) -> Result<(), ChatError> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut out = Printer::new(mode);
    // Read input only once in the room, so the first lines reach everyone
    // already there.
    let joined = |e: &Event| matches!(e, Event::Joined { .. });
    if !wait_for(&engine, &mut events, &mut lines, &mut out, joined).await? {
        return Ok(());
    }
    let connected = |e: &Event| {
        matches!(
            e,
            Event::MemberState {
                state: peerchat_client::peer::LinkState::Connected,
                ..
            }
        )
    };
    if until_connected && !wait_for(&engine, &mut events, &mut lines, &mut out, connected).await? {
        return Ok(());
    }
    let mut interrupted = false;
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    if entered(&engine, &line, mode, room.as_ref()).await {
                        break;
                    }
                }
                Ok(None) | Err(_) => break,
            },
            Some(event) = events.recv() => {
                out.print(&event);
                if let Event::PairingFailed { message } = event {
                    engine.leave().await;
                    return Err(ChatError::Pairing(message));
                }
            }
            _ = tokio::signal::ctrl_c() => {
                interrupted = true;
                break;
            }
        }
    }
    let mut result = Ok(());
    if !interrupted {
        let drained = async {
            engine.drain().await;
        };
        tokio::pin!(drained);
        // Keep printing what arrives while the last messages go out.
        let finished = tokio::time::timeout(linger, async {
            loop {
                tokio::select! {
                    () = &mut drained => return,
                    Some(event) = events.recv() => out.print(&event),
                }
            }
        })
        .await;
        if finished.is_err() {
            let undelivered = engine.undelivered().await;
            let total: usize = undelivered.iter().map(|(_, n)| n).sum();
            for (peer, n) in &undelivered {
                eprintln!("* {n} message(s) could not be delivered to {}", peer.nick);
            }
            if total > 0 {
                result = Err(ChatError::Undelivered(total));
            }
        }
    }
    engine.leave().await;
    result
}

/// Handles a line of input: a message or a command. True means leave
/// (`/quit`), as at the end of input. `room` is the room's id and link
/// (none for a pair).
async fn entered(
    engine: &Engine,
    line: &str,
    mode: Output,
    room: Option<&(String, String)>,
) -> bool {
    if line.trim().is_empty() {
        return false;
    }
    match command::parse(line, Mode::Line) {
        Err(err) => eprintln!("* {err}"),
        Ok(Entry::Message(text)) => {
            if let Err(err) = engine.send(&text) {
                eprintln!("* not sent: {err}");
            }
        }
        Ok(Entry::Command(Command::Quit)) => return true,
        Ok(Entry::Command(Command::Nick(nick))) => engine.rename(&nick),
        Ok(Entry::Command(
            command @ (Command::Send(_) | Command::Accept(_) | Command::Cancel(_)),
        )) => {
            for line in command::files(engine, &command).await {
                match line {
                    Ok(text) | Err(text) => eprintln!("* {}", escape(&text)),
                }
            }
        }
        Ok(Entry::Command(Command::Msg(nick, text))) => {
            if let Err(err) = engine.send_private(&nick, &text).await {
                eprintln!("* not sent: {}", escape(&err.to_string()));
            }
        }
        Ok(Entry::Command(Command::Help)) => {
            for line in command::help(Mode::Line) {
                eprintln!("* {line}");
            }
        }
        Ok(Entry::Command(Command::Verify(nick))) => match engine.safety_number(&nick).await {
            Ok(safety) => match mode {
                Output::Json => {
                    let json = serde_json::json!({ "event": "safety_number", "safety": safety });
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{json}");
                    let _ = out.flush();
                }
                Output::Plain => {
                    for line in command::safety_lines(&safety) {
                        eprintln!("* {}", escape(&line));
                    }
                }
            },
            Err(err) => eprintln!("* {}", escape(&err.to_string())),
        },
        Ok(Entry::Command(Command::Verified(nick))) => match engine.mark_verified(&nick).await {
            Ok(member) => eprintln!("* {} is marked verified", escape(&member.nick)),
            Err(err) => eprintln!("* {}", escape(&err.to_string())),
        },
        Ok(Entry::Command(Command::About { kind, text, nick })) => {
            if let Err(err) = engine.about(kind, &text, nick.as_deref()).await {
                eprintln!("* {}", escape(&err.to_string()));
            }
        }
        Ok(Entry::Command(Command::Clear)) => {
            engine.clear_history();
            eprintln!("* history cleared here; messages sent so far will not come back");
        }
        Ok(Entry::Command(Command::Qr)) => match room {
            None => eprintln!("* a pair has no room link"),
            Some((_, link)) => match crate::qr::lines(link) {
                Ok(lines) => {
                    eprintln!("* the room link, {link}:");
                    for line in lines {
                        eprintln!("{line}");
                    }
                }
                Err(err) => eprintln!("* {err}"),
            },
        },
        Ok(Entry::Command(Command::Export(path))) => {
            let id = room.map_or("pair", |(id, _)| id.as_str());
            match crate::archive::write(&path, id, &engine.messages().await) {
                Ok(n) => eprintln!("* exported {n} message(s) to {}", path.display()),
                Err(err) => eprintln!("* could not export to {}: {err}", path.display()),
            }
        }
        Ok(Entry::Command(Command::Search(words))) => {
            let messages = engine.messages().await;
            match mode {
                Output::Json => {
                    let kept: Vec<crate::archive::Kept> = messages.iter().map(Into::into).collect();
                    let found = crate::archive::search(&kept, &words, crate::archive::MAX_RESULTS);
                    let json =
                        serde_json::json!({ "event": "search", "query": words, "found": found });
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{json}");
                    let _ = out.flush();
                }
                Output::Plain => {
                    for line in crate::archive::search_lines(&messages, &words) {
                        eprintln!("* {}", escape(&line));
                    }
                }
            }
        }
        Ok(Entry::Command(Command::Peers)) => {
            let members = engine.stats().await;
            match mode {
                Output::Json => {
                    let json = serde_json::json!({ "event": "peers", "members": members });
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{json}");
                    let _ = out.flush();
                }
                Output::Plain if members.is_empty() => eprintln!("* nobody else is here yet"),
                Output::Plain => {
                    for member in &members {
                        eprintln!("* {}", escape(&command::describe(member)));
                    }
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_one_message_on_one_line() {
        assert_eq!(escape("a\nb\\n\r\u{7}é\tz"), "a\\nb\\\\n\\r\\u{7}é\tz");
        assert!(!escape("x\ny\rz\u{85}").contains(['\n', '\r', '\u{85}']));
    }
}
