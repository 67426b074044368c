//! The terminal client's long-term identity key: an Ed25519 key in a file
//! beside the history (`$XDG_DATA_HOME/peerchat/identity.key`), PKCS#8 DER,
//! readable by its owner only. It signs the hello on every connection and
//! every message; others pin it per room and nickname, and its safety
//! number with theirs is what people compare.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use peerchat_e2e::IdentityKey;

/// Why the identity key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading, creating or writing it failed.
    #[error("identity key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Others than its owner may read it: it is not used.
    #[error(
        "identity key file {path} can be read by others (mode {mode:03o}); peerchat will not use it. \
         Make it private with `chmod 600 {path}`, or remove it to make a new identity (the others \
         will then see that your safety number changed)"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// It holds no Ed25519 PKCS#8 key.
    #[error(
        "identity key file {path} does not hold a peerchat identity key (Ed25519, PKCS#8); \
         remove it to make a new one"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
    },
}

/// Where the identity key lives by default: beside the history file,
/// `$XDG_DATA_HOME/peerchat/identity.key` (or `~/.local/share/peerchat/`).
pub fn default_path() -> Option<PathBuf> {
    crate::store::default_path().map(|history| history.with_file_name("identity.key"))
}

/// Reads the identity key at `path`, or makes one there (mode 0600) if
/// there is none. A file that its group or others may read is refused.
pub fn load_or_create(path: &Path) -> Result<IdentityKey, IdentityError> {
    let io = |source| IdentityError::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::read(path) {
        Ok(der) => {
            check_private(path)?;
            IdentityKey::from_pkcs8(&der).map_err(|_| IdentityError::Malformed {
                path: path.to_owned(),
            })
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let key = IdentityKey::from_seed(rand::random());
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(path) {
                Ok(mut file) => {
                    file.write_all(key.pkcs8()).map_err(io)?;
                    file.sync_all().map_err(io)?;
                    Ok(key)
                }
                // Another client made it at the same moment: use theirs.
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(path),
                Err(err) => Err(io(err)),
            }
        }
        Err(err) => Err(io(err)),
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|source| IdentityError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), IdentityError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("peerchat-identity-{}", crate::random_id()));
        let path = dir.join("sub").join("identity.key");
        let made = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(made.public_key(), again.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = load_or_create(&path).unwrap_err();
            assert!(
                matches!(err, IdentityError::Exposed { mode: 0o644, .. }),
                "{err}"
            );
            assert!(err.to_string().contains("chmod 600"), "{err}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(&path, b"junk").unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(IdentityError::Malformed { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
