//! `peerchat`: the signaling server (`serve`, the default) and the terminal
//! client (`chat`).
#![forbid(unsafe_code)]

mod serve;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use peerchat_cli::ChatArgs;
use peerchat_server::{ConfigFile, LogFormat, ServeArgs};
use tracing_subscriber::EnvFilter;

/// Peer-to-peer group chat over WebRTC.
///
/// `peerchat` (or `peerchat serve`) runs the signaling server and serves the
/// web client; `peerchat chat ROOM_LINK` chats from the terminal. Chat text
/// goes directly between the people in a room and never through the server.
#[derive(Debug, Parser)]
#[command(name = "peerchat", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the signaling server and serve the web client (the default).
    Serve(Box<ServeArgs>),
    /// Join a room from the terminal and chat peer to peer with everyone in
    /// it, browsers included. A full-screen UI on a terminal; line mode
    /// (stdin to messages, messages to stdout) for scripts and bots.
    Chat(Box<ChatArgs>),
}

/// Parses the command line; with `--config` (or `PEERCHAT_CONFIG`), parses
/// it again with the file's settings as the flags' defaults, so that flags
/// and environment variables win over the file. Exits on a mistake: 2 for
/// the command line, 1 for the file.
fn parse() -> Cli {
    let cli = Cli::parse();
    let config = match &cli.command {
        Some(Command::Serve(args)) => args.config.clone(),
        Some(Command::Chat(_)) => None,
        None => cli.serve.config.clone(),
    };
    let Some(path) = config else {
        return cli;
    };
    let with_file = ConfigFile::read(&path).and_then(|file| {
        let command = file.apply(Cli::command())?;
        let mut serve = None;
        if let Some(sub) = command.find_subcommand("serve") {
            serve = Some(file.apply(sub.clone())?);
        }
        Ok(match serve {
            Some(serve) => command.mut_subcommand("serve", |_| serve),
            None => command,
        })
    });
    let command = match with_file {
        Ok(command) => command,
        Err(err) => {
            eprintln!("peerchat: {err}");
            std::process::exit(1);
        }
    };
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
}

fn main() -> ExitCode {
    let cli = parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("peerchat: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Command::Chat(args)) => {
            // The full-screen UI owns the terminal: log only when asked to.
            let tui = std::io::stdin().is_terminal()
                && std::io::stdout().is_terminal()
                && !args.plain
                && !args.json;
            // webrtc-rs reports expected failures (a relay refusing a
            // candidate pair, say) as errors: show only the client's own.
            if !tui || std::env::var_os("RUST_LOG").is_some() {
                init_logging("off,peerchat_client=warn,peerchat_cli=warn");
            }
            match runtime.block_on(peerchat_cli::run(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("peerchat: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        command => {
            let args = match command {
                Some(Command::Serve(args)) => *args,
                _ => cli.serve,
            };
            if args.check {
                return serve::check(args);
            }
            init_logging_as("info", args.log_format);
            match runtime.block_on(serve::serve(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("peerchat: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_logging(default: &str) {
    init_logging_as(default, LogFormat::Text);
}

fn init_logging_as(default: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
