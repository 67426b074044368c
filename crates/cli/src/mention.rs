//! Mentions in the terminal, by the web client's rule (`web/js/format.js`):
//! `@` not preceded by a letter or digit, followed by the nickname of a
//! member present (compared as the server compares nicknames,
//! [`nick_key`]) and then by anything but a letter or digit; the longest
//! matching nickname wins. And completing a name being typed after `@`.

use std::ops::Range;

use peerchat_protocol::validate::nick_key;

use crate::archive::fold;

/// A mention found in a text: where (bytes, the `@` included), and
/// whether it names us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    /// Its bytes in the text.
    pub range: Range<usize>,
    /// It names us.
    pub me: bool,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric()
}

/// The mentions of `nicks` in `text`; `me` is our nickname (one of them).
pub fn find(text: &str, nicks: &[&str], me: Option<&str>) -> Vec<Mention> {
    let mine = me.map(nick_key);
    let mut known: Vec<(&str, String, usize)> = nicks
        .iter()
        .map(|n| (*n, nick_key(n), n.chars().count()))
        .collect();
    known.sort_by_key(|k| std::cmp::Reverse(k.2));
    let mut found = Vec::new();
    let mut prev: Option<char> = None;
    let mut skip_to = 0;
    for (at, c) in text.char_indices() {
        if at < skip_to {
            prev = Some(c);
            continue;
        }
        if c == '@' && !prev.is_some_and(is_word) {
            let after = &text[at + 1..];
            for (_, key, chars) in &known {
                let end = after
                    .char_indices()
                    .nth(*chars)
                    .map_or(after.len(), |(i, _)| i);
                if after[..end].chars().count() != *chars {
                    continue;
                }
                let next = after[end..].chars().next();
                if next.is_some_and(is_word) || nick_key(&after[..end]) != *key {
                    continue;
                }
                found.push(Mention {
                    range: at..at + 1 + end,
                    me: mine.as_ref() == Some(key),
                });
                skip_to = at + 1 + end;
                break;
            }
        }
        prev = Some(c);
    }
    found
}

/// The `@name` being typed before byte `cursor`: where its `@` is, and
/// what follows it (no line break, not right after a letter or digit).
pub fn query(text: &str, cursor: usize) -> Option<(usize, &str)> {
    let before = &text[..cursor];
    let at = before.rfind(['@', '\n'])?;
    if before[at..].starts_with('\n') {
        return None;
    }
    if before[..at].chars().next_back().is_some_and(is_word) {
        return None;
    }
    let typed = &before[at + 1..];
    (typed.chars().count() <= 32).then_some((at, typed))
}

/// The nicknames `typed` is the start of (ignoring case and accents),
/// shortest first, then in alphabetical order.
pub fn candidates<'a>(typed: &str, nicks: &[&'a str]) -> Vec<&'a str> {
    let q = fold(typed);
    let mut found: Vec<&str> = nicks
        .iter()
        .copied()
        .filter(|n| fold(n).starts_with(&q))
        .collect();
    found.sort_by(|a, b| a.chars().count().cmp(&b.chars().count()).then(a.cmp(b)));
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_follow_the_web_clients_rule() {
        let nicks = ["alice", "Bob", "bob smith", "dora"];
        let text = "hi @alice, @BOB and @bob smith! mail x@alice.org @alicette @dora";
        let found = find(text, &nicks, Some("dora"));
        let shown: Vec<(&str, bool)> = found
            .iter()
            .map(|m| (&text[m.range.clone()], m.me))
            .collect();
        assert_eq!(
            shown,
            [
                ("@alice", false),
                ("@BOB", false),
                ("@bob smith", false),
                ("@dora", true)
            ]
        );
        // Look-alike letters compare as the server compares nicknames.
        let found = find("@аlice", &nicks, None);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].range, 0.."@аlice".len());
    }

    #[test]
    fn a_name_being_typed_is_completed_from_the_members() {
        assert_eq!(query("hi @al", 6), Some((3, "al")));
        assert_eq!(query("hi @", 4), Some((3, "")));
        assert_eq!(query("mail x@al", 9), None);
        assert_eq!(query("@al\nx", 5), None);
        assert_eq!(query("no mention", 10), None);
        let nicks = ["alice", "Albert", "bob", "al"];
        assert_eq!(candidates("AL", &nicks), ["al", "alice", "Albert"]);
        assert_eq!(candidates("é", &["Émile", "eve", "bob"]), ["eve", "Émile"]);
    }
}
