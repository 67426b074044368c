//! `peerchat`: the signaling server (`serve`, the default) and the terminal
//! client (`chat`).
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use peerchat_cli::ChatArgs;
use peerchat_server::{AppState, ConfigFile, LogFormat, ServeArgs};
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
                return check(args);
            }
            init_logging_as("info", args.log_format);
            match runtime.block_on(serve(args)) {
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

/// `peerchat serve --check`: everything `serve` checks before it starts,
/// without starting.
fn check(args: ServeArgs) -> ExitCode {
    match checked(args) {
        Ok(summary) => {
            println!("peerchat: the configuration is valid: {summary}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("peerchat: the configuration is not valid: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn checked(args: ServeArgs) -> anyhow::Result<String> {
    let addr = args.addr;
    let config = args.into_config()?;
    let needed =
        peerchat_server::descriptors_needed(config.max_connections, relay_allocations(&config));
    peerchat_server::raise_fd_limit(config.max_connections, needed)?;
    Ok(format!("it would listen on http://{addr}/"))
}

/// How many relay allocations the configuration allows, for the open-file
/// limit.
fn relay_allocations(config: &peerchat_server::Config) -> usize {
    match &config.turn {
        Some(peerchat_server::config::Turn {
            server:
                peerchat_server::config::TurnServer::Embedded {
                    max_allocations, ..
                },
            ..
        }) => *max_allocations,
        _ => 0,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.clone().into_config()?;
    let needed =
        peerchat_server::descriptors_needed(config.max_connections, relay_allocations(&config));
    peerchat_server::raise_fd_limit(config.max_connections, needed)?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    let addr = listener.local_addr()?;
    let relay = peerchat_server::start_relay(&mut config, addr)
        .await
        .context("starting the STUN/TURN relay (choose another --turn-port, or --no-turn)")?;
    if let Some(relay) = &relay {
        tracing::info!(addr = %relay.local_addr(), "STUN/TURN relay listening (UDP)");
    }
    let shutdown = shutdown_signal().context("installing the signal handlers")?;
    let shown = if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "peerchat is running: open http://{shown}/ in your browser"
        )?;
        out.flush()?;
    }
    peerchat_server::run(listener, AppState::new(config), shutdown).await?;
    if let Some(relay) = relay {
        relay.close().await;
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed at once, not
/// when the future is first polled, so that a signal that comes right after
/// the server says it is running still stops it gracefully.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
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
