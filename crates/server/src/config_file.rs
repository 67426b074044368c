//! `--config PATH`: `peerchat serve`'s flags in a TOML file.
//!
//! Each key is a flag's long name without the dashes, and its value is
//! what the flag would take: a string, a number, a boolean for a flag
//! without a value, or an array for a flag that may be repeated:
//!
//! ```toml
//! addr = "0.0.0.0:8080"
//! allowed-host = ["chat.example.org"]
//! max-connections = 20000
//! resume-grace = "30s"
//! turn-allow-private = true
//! ```
//!
//! The file's values become the flags' defaults, so that the precedence is
//! flags, then environment variables, then the file, then the built-in
//! defaults. Every value is checked by the flag's own parser when the file
//! is read; an unknown key is an error, not a silent no-op.

use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, Command};

/// Flags that make no sense in a configuration file.
const NOT_IN_FILE: &[&str] = &["config", "check", "help", "version"];

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file cannot be read.
    #[error("reading the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("the configuration file {path} is not valid TOML: {source}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where and why.
        source: Box<toml::de::Error>,
    },
    /// A key that names no flag.
    #[error("{path}: `{key}` is not a setting of peerchat serve{hint}")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// A close name, as " (did you mean `...`?)", or nothing.
        hint: String,
    },
    /// A value of the wrong kind or out of range.
    #[error("{path}: `{key}`: {message}")]
    BadValue {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

/// The settings of a configuration file, as flag names and values.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    table: toml::Table,
}

impl ConfigFile {
    /// Reads and parses `path` (the values are checked by [`Self::apply`]).
    pub fn read(path: &Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses `text`, read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigFileError> {
        let table = text
            .parse::<toml::Table>()
            .map_err(|source| ConfigFileError::Syntax {
                path: path.to_owned(),
                source: Box::new(source),
            })?;
        Ok(Self {
            path: path.to_owned(),
            table,
        })
    }

    /// Makes the file's values the defaults of `command`'s flags, after
    /// checking each with the flag's own parser.
    pub fn apply(&self, mut command: Command) -> Result<Command, ConfigFileError> {
        for (key, value) in &self.table {
            let arg = command
                .get_arguments()
                .find(|a| a.get_long() == Some(key.as_str()))
                .filter(|_| !NOT_IN_FILE.contains(&key.as_str()));
            let Some(arg) = arg else {
                return Err(ConfigFileError::UnknownKey {
                    path: self.path.clone(),
                    key: key.clone(),
                    hint: hint(&command, key),
                });
            };
            let bad = |message: String| ConfigFileError::BadValue {
                path: self.path.clone(),
                key: key.clone(),
                message,
            };
            let flag = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
            let many = matches!(arg.get_action(), ArgAction::Append);
            let values = match value {
                toml::Value::Boolean(b) if flag => vec![b.to_string()],
                _ if flag => return Err(bad("must be true or false".into())),
                toml::Value::Array(items) if many => items
                    .iter()
                    .map(scalar)
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad("must be an array of strings or numbers".into()))?,
                toml::Value::Array(_) => {
                    return Err(bad("takes one value, not an array".into()));
                }
                other => {
                    vec![scalar(other).ok_or_else(|| bad("must be a string or a number".into()))?]
                }
            };
            if !flag {
                check_values(arg, &values).map_err(bad)?;
            }
            let id = arg.get_id().clone();
            command = command.mut_arg(id, |a| a.default_values(values));
        }
        Ok(command)
    }
}

/// Checks values with the flag's own parser, as if they were given on the
/// command line.
fn check_values(arg: &Arg, values: &[String]) -> Result<(), String> {
    let long = arg.get_long().unwrap_or_default().to_owned();
    let mut probe_arg = Arg::new("probe")
        .long(long.clone())
        .value_parser(arg.get_value_parser().clone())
        .action(ArgAction::Append);
    if let Some(delimiter) = arg.get_value_delimiter() {
        probe_arg = probe_arg.value_delimiter(delimiter);
    }
    let probe = Command::new("peerchat").no_binary_name(true).arg(probe_arg);
    let argv = values.iter().map(|v| format!("--{long}={v}"));
    match probe.try_get_matches_from(argv) {
        Ok(_) => Ok(()),
        Err(err) => Err(clap_message(&err)),
    }
}

/// A TOML scalar as a flag's value.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A clap error's first line, without its `error: ` prefix.
fn clap_message(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// " (did you mean `x`?)" for a key close to a flag's name.
fn hint(command: &Command, key: &str) -> String {
    let wanted = key.replace('_', "-").to_ascii_lowercase();
    command
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|long| !NOT_IN_FILE.contains(long))
        .find(|long| *long == wanted || long.trim_start_matches("no-") == wanted)
        .map(|long| format!(" (did you mean `{long}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use clap::{Args, FromArgMatches};

    use super::*;
    use crate::ServeArgs;

    fn command() -> Command {
        ServeArgs::augment_args(Command::new("serve").no_binary_name(true))
    }

    fn parse(file: &str, argv: &[&str]) -> Result<ServeArgs, ConfigFileError> {
        let file = ConfigFile::parse(Path::new("test.toml"), file)?;
        let matches = file.apply(command())?.try_get_matches_from(argv).unwrap();
        Ok(ServeArgs::from_arg_matches(&matches).unwrap())
    }

    #[test]
    fn the_file_sets_defaults_and_flags_win() {
        let file = r#"
            addr = "0.0.0.0:9000"
            max-connections = 77
            allowed-host = ["a.example", "b.example"]
            turn-allow-private = true
            resume-grace = "5s"
        "#;
        let args = parse(file, &[]).unwrap();
        assert_eq!(args.addr.to_string(), "0.0.0.0:9000");
        assert_eq!(args.max_connections, 77);
        assert_eq!(args.allowed_hosts, ["a.example", "b.example"]);
        assert!(args.turn_allow_private);
        assert_eq!(args.resume_grace, std::time::Duration::from_secs(5));
        let args = parse(file, &["--max-connections", "5", "--allowed-host", "c"]).unwrap();
        assert_eq!(args.max_connections, 5);
        assert_eq!(args.allowed_hosts, ["c"]);
        assert_eq!(args.addr.to_string(), "0.0.0.0:9000");
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        let err = parse("max_connections = 5", &[]).unwrap_err().to_string();
        assert!(
            err.contains("`max_connections` is not a setting")
                && err.contains("did you mean `max-connections`"),
            "{err}"
        );
        let err = parse("check = true", &[]).unwrap_err().to_string();
        assert!(err.contains("`check` is not a setting"), "{err}");
        let err = parse("max-connections = 0", &[]).unwrap_err().to_string();
        assert!(err.starts_with("test.toml: `max-connections`: "), "{err}");
        assert!(err.contains("invalid value '0'"), "{err}");
        let err = parse("no-turn = \"yes\"", &[]).unwrap_err().to_string();
        assert!(err.contains("must be true or false"), "{err}");
        let err = parse("addr = [\"a\"]", &[]).unwrap_err().to_string();
        assert!(err.contains("takes one value"), "{err}");
        let err = parse("ping-interval = \"soon\"", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`ping-interval`"), "{err}");
        let err = parse("addr = ", &[]).unwrap_err().to_string();
        assert!(err.contains("not valid TOML"), "{err}");
    }
}
