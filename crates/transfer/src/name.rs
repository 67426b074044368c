//! Plain file names: what a receiver shows and saves instead of the name an
//! offer carries (`docs/protocol.md`, "File names").

use peerchat_protocol::validate::is_default_ignorable;

/// Longest plain name, in bytes of UTF-8 (what most file systems allow).
pub const MAX_NAME_BYTES: usize = 255;

/// The name given to a file whose name has nothing left.
pub const FALLBACK_NAME: &str = "file";

/// Characters that some file systems refuse in a name.
const RESERVED: &[char] = &['<', '>', ':', '"', '|', '?', '*'];

/// Names Windows gives to devices, whatever follows their first dot.
const DEVICES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7",
    "COM8", "COM9", "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// The plain form of an offered name: no directory, no control or
/// invisible characters (so nothing reverses or hides part of it), no runs
/// of white space, none of `< > : " | ? *`, no leading or trailing spaces or
/// dots, no device name of Windows, at most [`MAX_NAME_BYTES`] bytes with its
/// extension kept; never empty.
pub fn sanitize(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut plain = String::with_capacity(base.len());
    let mut space = false;
    for c in base.chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if c.is_control() || is_default_ignorable(c) {
            continue;
        }
        if space {
            plain.push(' ');
            space = false;
        }
        plain.push(if RESERVED.contains(&c) { '_' } else { c });
    }
    let plain = plain.trim_matches([' ', '.']);
    let mut plain = if plain.is_empty() {
        FALLBACK_NAME.to_owned()
    } else {
        plain.to_owned()
    };
    let device = plain
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end_matches(' ');
    if DEVICES.iter().any(|d| d.eq_ignore_ascii_case(device)) {
        plain.insert(0, '_');
    }
    fit(&plain, "")
}

/// The `n`-th name to try for a file whose plain name is `name` when the
/// ones before are taken: `name` itself for 0, then `NAME (1).EXT`,
/// `NAME (2).EXT`, … within [`MAX_NAME_BYTES`].
pub fn numbered(name: &str, n: u64) -> String {
    if n == 0 {
        return fit(name, "");
    }
    fit(name, &format!(" ({n})"))
}

/// Where the extension of a plain name starts: at its last dot, when that
/// leaves 2 to 16 bytes without a space (and something before it).
pub fn extension_start(name: &str) -> Option<usize> {
    let dot = name.rfind('.')?;
    let ext = &name[dot..];
    (dot > 0 && (2..=16).contains(&ext.len()) && !ext.contains(' ')).then_some(dot)
}

/// `name` with `tag` before its extension, its stem cut at a character
/// boundary (and trimmed of trailing spaces and dots) so that the whole
/// stays within [`MAX_NAME_BYTES`].
fn fit(name: &str, tag: &str) -> String {
    let (stem, ext) = match extension_start(name) {
        Some(dot) => name.split_at(dot),
        None => (name, ""),
    };
    if stem.len() + tag.len() + ext.len() <= MAX_NAME_BYTES {
        return format!("{stem}{tag}{ext}");
    }
    let budget = MAX_NAME_BYTES - tag.len() - ext.len();
    let mut cut = budget.min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    let stem = stem[..cut].trim_end_matches([' ', '.']);
    let stem = if stem.is_empty() { FALLBACK_NAME } else { stem };
    format!("{stem}{tag}{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples() {
        assert_eq!(sanitize("../../etc/passwd"), "passwd");
        assert_eq!(sanitize("C:\\Users\\x\\evil.exe"), "evil.exe");
        assert_eq!(sanitize("evil\u{202e}gnp.exe"), "evilgnp.exe");
        assert_eq!(sanitize("a\tb\n\nc.txt"), "a b c.txt");
        assert_eq!(sanitize(".."), "file");
        assert_eq!(sanitize(" .bashrc "), "bashrc");
        assert_eq!(sanitize("con.txt"), "_con.txt");
        assert_eq!(sanitize("a:b*?.txt"), "a_b__.txt");
        let long = format!("{}.pdf", "é".repeat(200));
        let cut = sanitize(&long);
        assert!(
            cut.len() <= MAX_NAME_BYTES && cut.ends_with(".pdf"),
            "{cut}"
        );
        assert_eq!(numbered("cat.png", 2), "cat (2).png");
        assert_eq!(numbered("README", 1), "README (1)");
        assert_eq!(numbered("archive.tar.gz", 1), "archive.tar (1).gz");
        assert_eq!(numbered("notes. v2", 1), "notes. v2 (1)");
    }

    proptest::proptest! {
        #[test]
        fn plain_names_are_plain(name in "\\PC{0,300}") {
            let plain = sanitize(&name);
            proptest::prop_assert!(!plain.is_empty() && plain.len() <= MAX_NAME_BYTES);
            proptest::prop_assert!(!plain.contains(['/', '\\']) && plain != "." && plain != "..");
            proptest::prop_assert!(!plain.starts_with(['.', ' ']) && !plain.ends_with(['.', ' ']));
            proptest::prop_assert!(!plain.chars().any(|c| c.is_control() || is_default_ignorable(c)));
            proptest::prop_assert_eq!(sanitize(&plain), plain.clone());
            proptest::prop_assert!(numbered(&plain, 12345).len() <= MAX_NAME_BYTES);
        }
    }
}
