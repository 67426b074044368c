//! Slash commands: one table for the terminal UI and line mode.
//!
//! A line whose first word is `/` and a letter (`/peers`, `/quit`) is a
//! command and never goes to the room: a mistyped or unknown one is an
//! error shown only here. A line starting with `//` is sent as a message
//! with one `/` less, so `//shrug` sends `/shrug`. Anything else (a lone
//! `/`, `/ ok`, `/:)`) is a message.
//!
//! A new command is a variant of [`Command`] and a row of [`COMMANDS`]:
//! its name, arguments, help, the modes it exists in, and how its
//! arguments are read.

use peerchat_client::about::EntryKind;
use peerchat_client::engine::{Engine, Event, FileError, FileInfo, MemberStats, Safety};

/// Where a line was typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The full-screen terminal UI.
    Tui,
    /// Line mode (`--plain`, `--json`, or not on a terminal).
    Line,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Tui => "the full-screen view",
            Self::Line => "line mode",
        }
    }
}

/// A command, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Lists the commands (and, in the full-screen view, the keys).
    Help,
    /// How each member is reached: route, round trip, bytes.
    Peers,
    /// Clears the room's history on this device.
    Clear,
    /// Shows our safety number with a member, to compare out of band.
    Verify(String),
    /// Marks a member verified (its safety number was compared).
    Verified(String),
    /// Shows the room link as a QR code.
    Qr,
    /// Writes the room's history kept here to a file: JSON for a path
    /// ending in `.json`, plain text otherwise.
    Export(std::path::PathBuf),
    /// Lists the messages kept here that hold every word.
    Search(String),
    /// Sends a private message: to the member (nickname), the text.
    Msg(String, String),
    /// Offers a file: `PATH` to the room, `NICK PATH` to one member (as
    /// typed; [`offer`] tells which).
    Send(String),
    /// Fetches the offers waiting to be accepted: those of this name, or
    /// all.
    Accept(Option<String>),
    /// Stops fetching files: those of this name, or all.
    Cancel(Option<String>),
    /// Adds an entry about a message (a reply, a reaction or its
    /// withdrawal: to `nick`'s latest message, or the latest from someone
    /// else; an edit or the deletion of our latest message) or the room's
    /// name.
    About {
        /// What it is.
        kind: EntryKind,
        /// The reply's or edit's text, the emoji, the name.
        text: String,
        /// Whose latest message it is about.
        nick: Option<String>,
    },
    /// Takes a new nickname in the room.
    Nick(String),
    /// Leaves the room.
    Quit,
}

/// What a typed line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A message for the room.
    Message(String),
    /// A command.
    Command(Command),
}

/// A row of the command table.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The name, typed after `/`.
    pub name: &'static str,
    /// Its arguments, for help (empty: none).
    pub args: &'static str,
    /// What it does, for help.
    pub about: &'static str,
    /// Where it can be used.
    pub modes: &'static [Mode],
    /// Reads the arguments (the text after the name, trimmed).
    parse: fn(&str) -> Result<Command, ArgsError>,
}

const EVERYWHERE: &[Mode] = &[Mode::Tui, Mode::Line];

/// Every command.
pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "help",
        args: "",
        about: "list the commands",
        modes: EVERYWHERE,
        parse: |args| no_args(args, Command::Help),
    },
    Spec {
        name: "peers",
        args: "",
        about: "how you reach each member: route, round trip, bytes",
        modes: EVERYWHERE,
        parse: |args| no_args(args, Command::Peers),
    },
    Spec {
        name: "clear",
        args: "",
        about: "clear this room's history here (it does not come back)",
        modes: EVERYWHERE,
        parse: |args| no_args(args, Command::Clear),
    },
    Spec {
        name: "verify",
        args: "NICK",
        about: "show your safety number with NICK, to compare with theirs out of band",
        modes: EVERYWHERE,
        parse: |args| needs_args(args, |a| Command::Verify(a.to_owned())),
    },
    Spec {
        name: "verified",
        args: "NICK",
        about: "mark NICK verified once your safety numbers matched",
        modes: EVERYWHERE,
        parse: |args| needs_args(args, |a| Command::Verified(a.to_owned())),
    },
    Spec {
        name: "qr",
        args: "",
        about: "show the room link as a QR code, to open it on a phone",
        modes: EVERYWHERE,
        parse: |args| no_args(args, Command::Qr),
    },
    Spec {
        name: "export",
        args: "PATH",
        about: "save this room's history here to a file (JSON if PATH ends in .json, else text)",
        modes: EVERYWHERE,
        parse: |args| needs_args(args, |a| Command::Export(expand_home(a))),
    },
    Spec {
        name: "search",
        args: "WORDS",
        about: "list the messages kept here that hold every word, newest first",
        modes: EVERYWHERE,
        parse: |args| needs_args(args, |a| Command::Search(a.to_owned())),
    },
    Spec {
        name: "msg",
        args: "NICK TEXT",
        about: "send TEXT to NICK only, privately (quote a nickname with spaces: \"bob b\")",
        modes: EVERYWHERE,
        parse: |args| {
            let (nick, text) = split_nick(args).ok_or(ArgsError::Missing)?;
            Ok(Command::Msg(nick, text.to_owned()))
        },
    },
    Spec {
        name: "send",
        args: "[NICK] PATH",
        about: "offer the file at PATH to the room, or to NICK only",
        modes: EVERYWHERE,
        parse: |args| needs_args(args, |a| Command::Send(a.to_owned())),
    },
    Spec {
        name: "accept",
        args: "[NAME]",
        about: "fetch the files offered that wait for you (over --accept-files), or only NAME",
        modes: EVERYWHERE,
        parse: |args| Ok(Command::Accept((!args.is_empty()).then(|| args.to_owned()))),
    },
    Spec {
        name: "cancel",
        args: "[NAME]",
        about: "stop fetching or sending files (or only NAME, also withdrawing your offer of it)",
        modes: EVERYWHERE,
        parse: |args| Ok(Command::Cancel((!args.is_empty()).then(|| args.to_owned()))),
    },
    Spec {
        name: "reply",
        args: "[@NICK] TEXT",
        about: "reply to NICK's latest message (without @NICK: the latest from someone else)",
        modes: EVERYWHERE,
        parse: |args| {
            let (nick, text) = about_nick_first(args);
            needs_args(text, |t| about(EntryKind::Reply, t, nick))
        },
    },
    Spec {
        name: "react",
        args: "EMOJI [@NICK]",
        about: "react with EMOJI to NICK's latest message (without @NICK: the latest from someone else)",
        modes: EVERYWHERE,
        parse: |args| reaction(EntryKind::React, args),
    },
    Spec {
        name: "unreact",
        args: "EMOJI [@NICK]",
        about: "take back your reaction EMOJI to that message",
        modes: EVERYWHERE,
        parse: |args| reaction(EntryKind::Unreact, args),
    },
    Spec {
        name: "edit",
        args: "TEXT",
        about: "replace the text of your latest message (it shows as edited)",
        modes: EVERYWHERE,
        parse: |args| needs_args(args, |t| about(EntryKind::Edit, t, None)),
    },
    Spec {
        name: "delete",
        args: "",
        about: "delete your latest message for everyone",
        modes: EVERYWHERE,
        parse: |args| no_args(args, about(EntryKind::Delete, "", None)),
    },
    Spec {
        name: "name",
        args: "[NAME]",
        about: "name the room for everyone in it (without NAME: clear its name)",
        modes: EVERYWHERE,
        parse: |args| Ok(about(EntryKind::RoomName, args, None)),
    },
    Spec {
        name: "nick",
        args: "NEWNAME",
        about: "take the nickname NEWNAME in this room (the others see \"alice is now ally\")",
        modes: EVERYWHERE,
        parse: |args| needs_args(args, |a| Command::Nick(a.to_owned())),
    },
    Spec {
        name: "quit",
        args: "",
        about: "leave the room (in line mode: once what you sent is delivered)",
        modes: EVERYWHERE,
        parse: |args| no_args(args, Command::Quit),
    },
];

/// Why a command's arguments were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ArgsError {
    /// It takes none.
    Unexpected,
    /// It needs some.
    Missing,
}

fn about(kind: EntryKind, text: &str, nick: Option<&str>) -> Command {
    Command::About {
        kind,
        text: text.to_owned(),
        nick: nick.map(str::to_owned),
    }
}

/// `@NICK REST` as the nick and the rest; anything else as no nick.
fn about_nick_first(args: &str) -> (Option<&str>, &str) {
    match args.strip_prefix('@') {
        Some(rest) => {
            let (nick, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            (Some(nick), text.trim_start())
        }
        None => (None, args),
    }
}

/// `EMOJI [@NICK]`.
fn reaction(kind: EntryKind, args: &str) -> Result<Command, ArgsError> {
    let (emoji, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    let nick = match rest.trim() {
        "" => None,
        rest => Some(rest.strip_prefix('@').ok_or(ArgsError::Missing)?),
    };
    needs_args(emoji, |e| about(kind, e, nick))
}

fn no_args(args: &str, command: Command) -> Result<Command, ArgsError> {
    if args.is_empty() {
        Ok(command)
    } else {
        Err(ArgsError::Unexpected)
    }
}

/// A path as typed, with a leading `~/` read as the home directory.
fn expand_home(path: &str) -> std::path::PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::Path::new(&home).join(rest),
        _ => path.into(),
    }
}

/// `/send [NICK] PATH`: a path naming a file is offered to the room;
/// otherwise a first word (or quoted nickname) naming a member offers the
/// rest to that member.
pub async fn offer(engine: &Engine, args: &str) -> Result<FileInfo, FileError> {
    let whole = expand_home(args);
    if !whole.is_file() {
        if let Some((nick, rest)) = split_nick(args) {
            if engine.member(&nick).await.is_some() {
                return engine.offer_file(Some(&nick), &expand_home(rest)).await;
            }
        }
    }
    engine.offer_file(None, &whole).await
}

/// A size for people: `512 B`, `40.0 KiB`, `5.0 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// What a file event says, for people (none for progress).
pub fn file_notice(event: &Event) -> Option<String> {
    Some(match event {
        Event::FileOffered { file, .. } if file.own => {
            let to = file
                .private
                .as_ref()
                .map_or_else(|| "the room".to_owned(), |p| p.nick.clone());
            format!(
                "you offered {} ({}) to {to}",
                file.name,
                human_size(file.size)
            )
        }
        Event::FileOffered { file, waiting } => {
            let how = if file.private.is_some() {
                " privately"
            } else {
                ""
            };
            let next = if *waiting {
                format!("; /accept {} to fetch it", file.name)
            } else {
                "; fetching it".to_owned()
            };
            format!(
                "{} offers{how} {} ({}, {}){next}",
                file.from.nick,
                file.name,
                human_size(file.size),
                file.mime
            )
        }
        Event::FileSaved {
            name, path, sha256, ..
        } => format!("{name} saved as {} (SHA-256 {sha256})", path.display()),
        Event::FileFailed { name, reason, .. } => format!("{name} was not saved: {reason}"),
        Event::FileWithdrawn { file } => format!(
            "you withdrew your offer of {}: nobody fetches it from you any more",
            file.name
        ),
        _ => return None,
    })
}

/// Carries out `/send`, `/accept` or `/cancel`: what to tell, each line
/// an error (`Err`) or a notice.
pub async fn files(engine: &Engine, command: &Command) -> Vec<Result<String, String>> {
    match command {
        Command::Send(args) => match offer(engine, args).await {
            // The offer is told as it enters the log.
            Ok(_) => Vec::new(),
            Err(err) => vec![Err(format!("not offered: {err}"))],
        },
        Command::Accept(name) => {
            let accepted = engine.accept_files(name.as_deref()).await;
            if accepted.is_empty() {
                return vec![Err(match name {
                    Some(name) => format!("no file called {name} waits to be accepted"),
                    None => "no file waits to be accepted".to_owned(),
                })];
            }
            accepted
                .iter()
                .map(|f| Ok(format!("fetching {} ({})", f.name, human_size(f.size))))
                .collect()
        }
        Command::Cancel(name) => {
            let cancelled = engine.cancel_files(name.as_deref()).await;
            if cancelled.is_empty() {
                return vec![Err(match name {
                    Some(name) => {
                        format!("no file called {name} is being fetched or offered by you")
                    }
                    None => "no file is being fetched or sent".to_owned(),
                })];
            }
            // Each is told as it stops (file_failed, file_withdrawn).
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// Splits `NICK REST` (or `"NICK WITH SPACES" REST`) where REST is not
/// empty.
pub fn split_nick(args: &str) -> Option<(String, &str)> {
    let (nick, rest) = match args.strip_prefix('"') {
        Some(quoted) => {
            let (nick, rest) = quoted.split_once('"')?;
            (nick, rest)
        }
        None => args.split_once(char::is_whitespace)?,
    };
    let rest = rest.trim_start();
    (!nick.is_empty() && !rest.is_empty()).then(|| (nick.to_owned(), rest))
}

fn needs_args(args: &str, command: impl FnOnce(&str) -> Command) -> Result<Command, ArgsError> {
    if args.is_empty() {
        Err(ArgsError::Missing)
    } else {
        Ok(command(args))
    }
}

/// Why a typed command cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No command has this name.
    #[error(
        "unknown command /{name}{}; /help lists the commands (to send a line starting with /, begin it with //)",
        suggestion.map(|s| format!(" (did you mean /{s}?)")).unwrap_or_default()
    )]
    Unknown {
        /// What was typed.
        name: String,
        /// A command with a similar name.
        suggestion: Option<&'static str>,
    },
    /// The command exists, but not in this mode.
    #[error("/{name} is not available in {mode}")]
    NotHere {
        /// The command.
        name: &'static str,
        /// Where it was typed.
        mode: &'static str,
    },
    /// The command takes no arguments.
    #[error("/{name} takes no arguments")]
    NoArguments {
        /// The command.
        name: &'static str,
    },
    /// The command needs arguments.
    #[error("/{name} needs {args}: /{name} {args}")]
    MissingArguments {
        /// The command.
        name: &'static str,
        /// What it takes.
        args: &'static str,
    },
}

/// Reads a typed line: a message, or a command available in `mode`.
pub fn parse(line: &str, mode: Mode) -> Result<Entry, CommandError> {
    let trimmed = line.trim_start();
    if let Some(rest) = trimmed.strip_prefix("//") {
        return Ok(Entry::Message(format!("/{rest}")));
    }
    let Some(body) = trimmed
        .strip_prefix('/')
        .filter(|b| b.starts_with(char::is_alphabetic))
    else {
        return Ok(Entry::Message(line.to_owned()));
    };
    let (name, args) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
    let lower = name.to_lowercase();
    let Some(spec) = COMMANDS.iter().find(|s| s.name == lower) else {
        return Err(CommandError::Unknown {
            suggestion: suggest(&lower, mode),
            name: name.to_owned(),
        });
    };
    if !spec.modes.contains(&mode) {
        return Err(CommandError::NotHere {
            name: spec.name,
            mode: mode.name(),
        });
    }
    (spec.parse)(args.trim())
        .map(Entry::Command)
        .map_err(|err| match err {
            ArgsError::Unexpected => CommandError::NoArguments { name: spec.name },
            ArgsError::Missing => CommandError::MissingArguments {
                name: spec.name,
                args: spec.args,
            },
        })
}

/// A command of `mode` whose name `typed` may have meant: the only one it
/// begins, or one a letter or two away.
fn suggest(typed: &str, mode: Mode) -> Option<&'static str> {
    let here = || COMMANDS.iter().filter(move |s| s.modes.contains(&mode));
    let mut prefixed = here().filter(|s| s.name.starts_with(typed));
    if let (Some(only), None) = (prefixed.next(), prefixed.next()) {
        return Some(only.name);
    }
    here()
        .map(|s| (strsim::damerau_levenshtein(typed, s.name), s.name))
        .filter(|&(d, name)| d <= 2 && d < name.len().min(typed.len()))
        .min_by_key(|&(d, _)| d)
        .map(|(_, name)| name)
}

/// Whether `line` would be read as a command (so typing it is not
/// announced to the room).
pub fn is_command(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed
        .strip_prefix('/')
        .is_some_and(|b| b.starts_with(char::is_alphabetic))
}

/// A member's line in the answer to `/peers`.
pub fn describe(member: &MemberStats) -> String {
    let route = route(member);
    match member.identity {
        Some(identity) if identity.changed && !identity.verified => {
            format!("{route}; its safety number changed, not verified")
        }
        Some(identity) if identity.verified => format!("{route}; ✓ verified"),
        Some(_) => format!("{route}; not verified yet (/verify {})", member.member.nick),
        None => route,
    }
}

fn route(member: &MemberStats) -> String {
    match &member.stats {
        Some(st) => format!(
            "{}: {} ({} ↔ {}), round trip {}, sent {} B, received {} B",
            member.member.nick,
            if st.relayed() { "relayed" } else { "direct" },
            st.local,
            st.remote,
            st.rtt_ms.map_or("–".to_owned(), |ms| format!("{ms:.1} ms")),
            st.bytes_sent,
            st.bytes_received
        ),
        None => format!("{}: {}", member.member.nick, member.state.as_str()),
    }
}

/// The answer to `/verify`, for people.
pub fn safety_lines(safety: &Safety) -> Vec<String> {
    let nick = &safety.member.nick;
    let mut lines = vec![
        format!("your safety number with {nick}:"),
        format!("    {}", safety.safety_number),
    ];
    if safety.verified {
        lines.push(format!("{nick} is marked verified ✓"));
    } else {
        lines.push(format!(
            "compare it with the one {nick} sees (in person, or over a call); if they match, /verified {nick}"
        ));
    }
    lines
}

/// The help for `mode`'s commands, one line each.
pub fn help(mode: Mode) -> Vec<String> {
    let commands: Vec<&Spec> = COMMANDS
        .iter()
        .filter(|s| s.modes.contains(&mode))
        .collect();
    let width = commands
        .iter()
        .map(|s| s.name.len() + s.args.len() + 2)
        .max()
        .unwrap_or(0);
    let mut lines: Vec<String> = commands
        .iter()
        .map(|s| {
            let usage = if s.args.is_empty() {
                format!("/{}", s.name)
            } else {
                format!("/{} {}", s.name, s.args)
            };
            format!("{usage:width$}  {}", s.about)
        })
        .collect();
    lines.push("//text sends text starting with /".to_owned());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> Result<Entry, CommandError> {
        Ok(Entry::Message(text.to_owned()))
    }

    #[test]
    fn replies_reactions_edits_deletions_and_the_room_name_are_read() {
        let about = |kind, text: &str, nick: Option<&str>| {
            Ok(Entry::Command(Command::About {
                kind,
                text: text.to_owned(),
                nick: nick.map(str::to_owned),
            }))
        };
        assert_eq!(
            parse("/reply @bob sure, at noon", Mode::Tui),
            about(EntryKind::Reply, "sure, at noon", Some("bob"))
        );
        assert_eq!(
            parse("/reply sure", Mode::Line),
            about(EntryKind::Reply, "sure", None)
        );
        assert_eq!(
            parse("/react 👍 @alice", Mode::Line),
            about(EntryKind::React, "👍", Some("alice"))
        );
        assert_eq!(
            parse("/unreact 👍", Mode::Tui),
            about(EntryKind::Unreact, "👍", None)
        );
        assert_eq!(
            parse("/edit lunch at one?", Mode::Line),
            about(EntryKind::Edit, "lunch at one?", None)
        );
        assert_eq!(
            parse("/delete", Mode::Line),
            about(EntryKind::Delete, "", None)
        );
        assert_eq!(
            parse("/name Lunch crew", Mode::Line),
            about(EntryKind::RoomName, "Lunch crew", None)
        );
        assert_eq!(
            parse("/name", Mode::Line),
            about(EntryKind::RoomName, "", None)
        );
        assert!(matches!(
            parse("/reply @bob", Mode::Line),
            Err(CommandError::MissingArguments { name: "reply", .. })
        ));
        assert!(matches!(
            parse("/react 👍 bob", Mode::Line),
            Err(CommandError::MissingArguments { name: "react", .. })
        ));
        assert!(matches!(
            parse("/delete it", Mode::Line),
            Err(CommandError::NoArguments { name: "delete" })
        ));
    }

    #[test]
    fn commands_are_read_and_messages_pass_through() {
        assert_eq!(parse("/quit", Mode::Tui), Ok(Entry::Command(Command::Quit)));
        assert_eq!(
            parse(" /Peers ", Mode::Line),
            Ok(Entry::Command(Command::Peers))
        );
        assert_eq!(
            parse("/clear", Mode::Line),
            Ok(Entry::Command(Command::Clear))
        );
        assert_eq!(parse("/help", Mode::Tui), Ok(Entry::Command(Command::Help)));
        assert_eq!(parse("hello /quit", Mode::Tui), message("hello /quit"));
        assert_eq!(parse("/", Mode::Tui), message("/"));
        assert_eq!(parse("/ ok", Mode::Tui), message("/ ok"));
        assert_eq!(parse("/:)", Mode::Tui), message("/:)"));
    }

    #[test]
    fn what_reads_as_a_command_is_known_while_typing() {
        assert!(is_command("/pe"));
        assert!(is_command(" /quit"));
        assert!(!is_command("//x"));
        assert!(!is_command("/ ok"));
        assert!(!is_command("hi"));
    }

    #[test]
    fn a_double_slash_sends_a_line_starting_with_one() {
        assert_eq!(parse("//shrug", Mode::Tui), message("/shrug"));
        assert_eq!(parse("//quit now", Mode::Line), message("/quit now"));
        assert_eq!(parse("//", Mode::Line), message("/"));
    }

    #[test]
    fn unknown_and_mistyped_commands_are_errors_that_say_what_to_do() {
        let err = parse("/bogus", Mode::Tui).unwrap_err();
        assert_eq!(
            err,
            CommandError::Unknown {
                name: "bogus".into(),
                suggestion: None
            }
        );
        let text = err.to_string();
        assert!(text.contains("unknown command /bogus"), "{text}");
        assert!(text.contains("//"), "{text}");
        assert_eq!(
            parse("/nick  dora2 ", Mode::Tui),
            Ok(Entry::Command(Command::Nick("dora2".into())))
        );
        let text = parse("/nick", Mode::Line).unwrap_err().to_string();
        assert!(text.contains("/nick NEWNAME"), "{text}");
        let typo = parse("/peres", Mode::Tui).unwrap_err().to_string();
        assert!(typo.contains("did you mean /peers?"), "{typo}");
        let prefix = parse("/qu", Mode::Line).unwrap_err().to_string();
        assert!(prefix.contains("did you mean /quit?"), "{prefix}");
        assert_eq!(
            parse("/quit now", Mode::Tui),
            Err(CommandError::NoArguments { name: "quit" })
        );
        let err = parse("/verify", Mode::Line).unwrap_err();
        assert_eq!(
            err,
            CommandError::MissingArguments {
                name: "verify",
                args: "NICK"
            }
        );
        assert!(err.to_string().contains("/verify NICK"), "{err}");
        assert_eq!(
            parse("/verify  alice ", Mode::Tui),
            Ok(Entry::Command(Command::Verify("alice".into())))
        );
        assert_eq!(
            parse("/Verified bob b", Mode::Line),
            Ok(Entry::Command(Command::Verified("bob b".into())))
        );
    }

    #[test]
    fn export_and_search_take_their_arguments_whole() {
        assert_eq!(
            parse("/export chat log.json", Mode::Tui),
            Ok(Entry::Command(Command::Export("chat log.json".into())))
        );
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(
                parse("/export ~/log.txt", Mode::Line),
                Ok(Entry::Command(Command::Export(
                    std::path::Path::new(&home).join("log.txt")
                )))
            );
        }
        assert_eq!(
            parse("/search  deploy  failed ", Mode::Line),
            Ok(Entry::Command(Command::Search("deploy  failed".into())))
        );
        assert_eq!(parse("/qr", Mode::Line), Ok(Entry::Command(Command::Qr)));
        let err = parse("/export", Mode::Tui).unwrap_err();
        assert_eq!(err.to_string(), "/export needs PATH: /export PATH");
        assert!(parse("/search", Mode::Tui).is_err());
    }

    #[test]
    fn msg_takes_a_nickname_then_the_text() {
        assert_eq!(
            parse("/msg bob  hi there ", Mode::Line),
            Ok(Entry::Command(Command::Msg(
                "bob".into(),
                "hi there".into()
            )))
        );
        assert_eq!(
            parse("/msg \"bob b\" psst", Mode::Tui),
            Ok(Entry::Command(Command::Msg("bob b".into(), "psst".into())))
        );
        for incomplete in ["/msg", "/msg bob", "/msg \"bob b\"", "/msg \"bob hi"] {
            let err = parse(incomplete, Mode::Line).unwrap_err();
            assert_eq!(err.to_string(), "/msg needs NICK TEXT: /msg NICK TEXT");
        }
    }

    #[test]
    fn file_commands_take_their_arguments_whole() {
        assert_eq!(
            parse("/send my notes.txt", Mode::Line),
            Ok(Entry::Command(Command::Send("my notes.txt".into())))
        );
        assert_eq!(
            parse("/accept", Mode::Tui),
            Ok(Entry::Command(Command::Accept(None)))
        );
        assert_eq!(
            parse("/accept big file.iso", Mode::Line),
            Ok(Entry::Command(Command::Accept(Some("big file.iso".into()))))
        );
        assert_eq!(
            parse("/cancel", Mode::Line),
            Ok(Entry::Command(Command::Cancel(None)))
        );
        assert!(parse("/send", Mode::Tui).is_err());
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(16 * 1024), "16.0 KiB");
        assert_eq!(human_size(5 << 20), "5.0 MiB");
        assert_eq!(human_size(3 << 29), "1.5 GiB");
    }

    #[test]
    fn help_lists_every_command_of_the_mode() {
        for mode in [Mode::Tui, Mode::Line] {
            let help = help(mode);
            for spec in COMMANDS.iter().filter(|s| s.modes.contains(&mode)) {
                assert!(
                    help.iter()
                        .any(|l| l.starts_with(&format!("/{}", spec.name)))
                );
            }
        }
    }
}
