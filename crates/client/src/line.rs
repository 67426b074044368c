//! Line mode, for scripts and bots: each line of standard input is sent as
//! a message; each message received is printed on standard output as
//! `nick: text` (or, with `--json`, every event as one JSON object per
//! line); notices go to standard error. At the end of input, pending
//! messages are delivered before leaving.

use std::io::Write;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::cli::ChatError;
use crate::engine::{Engine, Event, ServerState};

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
        Event::Server {
            state: ServerState::Offline,
            retry_in_ms,
        } => format!(
            "server unreachable, retrying in {}s; connected members can still chat",
            retry_in_ms.unwrap_or(0).div_ceil(1000)
        ),
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
        Event::MemberState { member, state } => format!("{} is {}", member.nick, state.as_str()),
        Event::Message(_) | Event::Delivery { .. } | Event::Typing { .. } => return None,
    })
}

fn print(event: &Event, mode: Output) {
    match mode {
        // An earlier run printed these already.
        Output::Json if matches!(event, Event::Message(m) if m.stored) => {}
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
                let _ = writeln!(out, "{}: {}", escape(&m.from.nick), escape(&m.text));
                let _ = out.flush();
            }
            other => {
                if let Some(text) = notice(other) {
                    eprintln!("* {}", escape(&text));
                }
            }
        },
    }
}

/// Runs line mode until standard input ends (or Ctrl-C). With
/// `until_connected`, input is read only once a member is connected (when
/// standard input first carries a connection code).
pub async fn run(
    engine: Engine,
    mut events: mpsc::UnboundedReceiver<Event>,
    mode: Output,
    linger: Duration,
    until_connected: bool,
) -> Result<(), ChatError> {
    // Read input only once in the room, so the first lines reach everyone
    // already there.
    loop {
        let Some(event) = events.recv().await else {
            return Ok(());
        };
        print(&event, mode);
        match event {
            Event::Joined { .. } => break,
            Event::JoinRefused { code, message } => {
                engine.leave().await;
                return Err(ChatError::JoinRefused { code, message });
            }
            _ => {}
        }
    }
    if until_connected {
        loop {
            let Some(event) = events.recv().await else {
                return Ok(());
            };
            print(&event, mode);
            if let Event::MemberState {
                state: crate::peer::LinkState::Connected,
                ..
            } = event
            {
                break;
            }
        }
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut interrupted = false;
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => send(&engine, &line),
                Ok(None) | Err(_) => break,
            },
            Some(event) = events.recv() => print(&event, mode),
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
                    Some(event) = events.recv() => print(&event, mode),
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

fn send(engine: &Engine, line: &str) {
    if line.trim().is_empty() {
        return;
    }
    if let Err(err) = engine.send(line) {
        eprintln!("* not sent: {err}");
    }
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
