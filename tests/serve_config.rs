//! Running `peerchat serve` as a service: the `--config` file (every flag,
//! and its place in the precedence), `--check`'s exit codes, JSON log lines
//! and the systemd unit in `deploy/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use clap::{Args, FromArgMatches};
use peerchat_server::{ConfigFile, ServeArgs};

const BIN: &str = env!("CARGO_BIN_EXE_peerchat");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `peerchat ARGS` with no PEERCHAT_* variable from the caller.
fn peerchat(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("XDG_DATA_HOME", std::env::temp_dir());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PEERCHAT_") {
            command.env_remove(key);
        }
    }
    command
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().unwrap()
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("peerchat-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `deploy/peerchat.toml` with every setting uncommented.
fn every_setting() -> String {
    let example = std::fs::read_to_string(Path::new(ROOT).join("deploy/peerchat.toml")).unwrap();
    example
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("# ")?;
            let (key, _) = rest.split_once(" = ")?;
            key.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                .then(|| rest.to_owned())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn serve_command() -> clap::Command {
    ServeArgs::augment_args(clap::Command::new("serve").no_binary_name(true))
}

#[test]
fn the_example_configuration_names_every_flag_and_each_value_parses() {
    let file = every_setting();
    let table: toml::Table = file.parse().unwrap();
    for arg in serve_command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if ["config", "check", "help"].contains(&long) {
            continue;
        }
        assert!(
            table.contains_key(long),
            "deploy/peerchat.toml does not show `{long}`"
        );
    }

    // Every setting of the file arrives as the same flag on the command
    // line would.
    let config = ConfigFile::parse(Path::new("every.toml"), &file).unwrap();
    let matches = config
        .apply(serve_command())
        .unwrap()
        .try_get_matches_from(Vec::<String>::new())
        .unwrap();
    let from_file = ServeArgs::from_arg_matches(&matches).unwrap();
    let mut argv = Vec::new();
    for (key, value) in &table {
        match value {
            toml::Value::Boolean(true) => argv.push(format!("--{key}")),
            toml::Value::Boolean(false) => {}
            toml::Value::Array(items) => {
                for item in items {
                    argv.push(format!("--{key}={}", item.as_str().unwrap()));
                }
            }
            toml::Value::String(s) => argv.push(format!("--{key}={s}")),
            other => argv.push(format!("--{key}={other}")),
        }
    }
    let from_flags =
        ServeArgs::from_arg_matches(&serve_command().try_get_matches_from(&argv).unwrap()).unwrap();
    assert_eq!(format!("{from_file:?}"), format!("{from_flags:?}"));

    // And the whole file passes --check, with a certificate of our own.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_path = temp_file("every.crt", &cert.pem());
    let key_path = temp_file("every.key", &key.serialize_pem());
    let file = file
        .lines()
        .map(|line| match line.split_once(" = ") {
            Some(("tls-cert", _)) => format!("tls-cert = {:?}", cert_path.display().to_string()),
            Some(("tls-key", _)) => format!("tls-key = {:?}", key_path.display().to_string()),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = temp_file("every.toml", &file);
    let out = run(peerchat(&["serve", "--check", "--config"]).arg(&path));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_file() {
    let path = temp_file(
        "precedence.toml",
        "addr = \"127.0.0.1:1001\"\nmax-connections = 500\n",
    );
    let check = |env: Option<&str>, flag: Option<&str>| {
        let mut command = peerchat(&["serve", "--check", "--config"]);
        command.arg(&path);
        if let Some(addr) = env {
            command.env("PEERCHAT_ADDR", addr);
        }
        if let Some(addr) = flag {
            command.args(["--addr", addr]);
        }
        let out = run(&mut command);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(check(None, None).contains("http://127.0.0.1:1001/"));
    assert!(check(Some("127.0.0.1:1002"), None).contains("http://127.0.0.1:1002/"));
    assert!(
        check(Some("127.0.0.1:1002"), Some("127.0.0.1:1003")).contains("http://127.0.0.1:1003/")
    );
    // The top-level form (`peerchat --config`) reads the file too.
    let out = run(peerchat(&["--check", "--config"]).arg(&path));
    assert!(String::from_utf8_lossy(&out.stdout).contains("http://127.0.0.1:1001/"));
    // So does PEERCHAT_CONFIG.
    let out = run(peerchat(&["serve", "--check"]).env("PEERCHAT_CONFIG", &path));
    assert!(String::from_utf8_lossy(&out.stdout).contains("http://127.0.0.1:1001/"));
}

#[test]
fn check_exits_0_when_valid_1_when_not_and_2_for_a_command_line_mistake() {
    let code = |out: Output| {
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (status, _) = code(run(&mut peerchat(&["serve", "--check", "--no-turn"])));
    assert_eq!(status, Some(0));

    // Settings that cannot work together.
    let (status, err) = code(run(&mut peerchat(&[
        "serve",
        "--check",
        "--ping-interval",
        "60s",
        "--idle-timeout",
        "30s",
    ])));
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("--idle-timeout"), "{err}");

    // The cluster's and the PeerJS endpoint's settings are checked too
    // (Redis itself is not asked).
    let out = run(&mut peerchat(&[
        "serve",
        "--check",
        "--no-turn",
        "--peerjs",
        "--redis-url",
        "redis://127.0.0.1:1",
    ]));
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("PeerJS endpoint at /peerjs"), "{said}");
    assert!(said.contains("sharing rooms through Redis"), "{said}");
    for (flags, says) in [
        (&["--redis-url", "http://127.0.0.1:6379"][..], "--redis-url"),
        (
            &["--redis-url", "redis://127.0.0.1", "--redis-lease", "100ms"][..],
            "--redis-lease",
        ),
        (&["--peerjs", "--peerjs-key", ""][..], "--peerjs-key"),
        (
            &["--peerjs", "--peerjs-expire-timeout", "0s"][..],
            "--peerjs-expire-timeout",
        ),
    ] {
        let mut command = peerchat(&["serve", "--check", "--no-turn"]);
        let (status, err) = code(run(command.args(flags)));
        assert_eq!(status, Some(1), "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
    }

    // A file with an unknown key, a bad value, or bad TOML.
    for (text, says) in [
        ("max-conections = 5\n", "`max-conections` is not a setting"),
        ("room-capacity = \"many\"\n", "`room-capacity`"),
        ("addr = \n", "not valid TOML"),
    ] {
        let path = temp_file("bad.toml", text);
        let (status, err) = code(run(peerchat(&["serve", "--check", "--config"]).arg(&path)));
        assert_eq!(status, Some(1), "{text}: {err}");
        assert!(err.contains(says), "{text}: {err}");
    }
    let (status, err) = code(run(&mut peerchat(&[
        "serve",
        "--check",
        "--config",
        "/nonexistent/peerchat.toml",
    ])));
    assert_eq!(status, Some(1), "{err}");

    // A flag that does not exist, or a value that does not parse.
    let (status, _) = code(run(&mut peerchat(&["serve", "--check", "--no-such-flag"])));
    assert_eq!(status, Some(2));
    let (status, _) = code(run(&mut peerchat(&[
        "serve",
        "--check",
        "--max-connections",
        "lots",
    ])));
    assert_eq!(status, Some(2));
}

#[test]
fn json_logs_are_one_json_object_per_line() {
    let mut server = peerchat(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--no-turn",
        "--log-format",
        "json",
    ])
    .env("RUST_LOG", "info")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("peerchat is running"), "{line}");
    // SIGTERM: the server logs its shutdown and exits.
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let out = server.wait_with_output().unwrap();
    let logs = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = logs.lines().collect();
    assert!(!lines.is_empty(), "no log lines");
    for line in &lines {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(event["timestamp"].is_string(), "{line}");
        assert!(event["level"].is_string(), "{line}");
        assert!(event["message"].is_string(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("\"shutting down\"")),
        "{logs}"
    );
}

#[test]
fn the_systemd_unit_is_hardened_and_holds_the_default_connections() {
    let unit = std::fs::read_to_string(Path::new(ROOT).join("deploy/peerchat.service")).unwrap();
    let setting = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("the unit has no {key}="))
            .to_owned()
    };
    assert_eq!(setting("DynamicUser"), "yes");
    assert_eq!(setting("ProtectSystem"), "strict");
    assert_eq!(setting("NoNewPrivileges"), "yes");
    assert_eq!(setting("CapabilityBoundingSet"), "");
    assert!(!unit.lines().any(|l| l.starts_with("AmbientCapabilities=")));
    assert!(setting("ExecStart").contains("--config /etc/peerchat/peerchat.toml"));
    assert!(setting("ExecStartPre").contains("--check"));
    // The defaults of the example configuration fit the open-file limit.
    let limit: u64 = setting("LimitNOFILE").parse().unwrap();
    let defaults = ServeArgs::from_arg_matches(
        &serve_command()
            .try_get_matches_from(Vec::<String>::new())
            .unwrap(),
    )
    .unwrap();
    // With TLS, the relay takes clients over TCP and TLS too.
    let allocations = defaults.turn_max_allocations as usize;
    let needed = peerchat_server::descriptors_needed(
        defaults.max_connections as usize,
        allocations + 2 * (allocations + 64),
    );
    assert!(limit >= needed, "LimitNOFILE={limit} < {needed}");

    // systemd itself finds nothing wrong with it, with this build as the
    // program.
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        let local = unit.replace("/usr/local/bin/peerchat", BIN);
        let path = temp_file("peerchat.service", &local);
        let out = run(Command::new("systemd-analyze").arg("verify").arg(&path));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && said.trim().is_empty(), "{said}");
    }
}
