//! How replies, edits, deletions and reactions read in the terminal, in
//! line mode and in the full-screen view alike.

use peerchat_client::about::{Quote, Shown};
use peerchat_client::engine::Peer;

/// A reply's quote: `NICK: TEXT`.
pub fn quote_line(quote: &Quote) -> String {
    if quote.nick.is_empty() {
        quote.text.clone()
    } else {
        format!("{}: {}", quote.nick, quote.text)
    }
}

/// The reactions: `👍 alice, bob · 🎉 carol`.
pub fn reactions_line(shown: &Shown) -> String {
    shown
        .reactions
        .iter()
        .map(|r| {
            let who: Vec<&str> = r.by.iter().map(|(_, nick)| nick.as_str()).collect();
            format!("{} {}", r.emoji, who.join(", "))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The text a message shows now, with its marks: `TEXT (edited)`, then
/// its reactions in brackets; `(message deleted)` for a tombstone.
pub fn shown_text(shown: &Shown) -> String {
    if shown.deleted {
        return "(message deleted)".to_owned();
    }
    let mut text = shown.text.clone();
    if shown.edited {
        text.push_str(" (edited)");
    }
    if !shown.reactions.is_empty() {
        text.push_str(&format!(" [{}]", reactions_line(shown)));
    }
    text
}

/// A notice saying what a message of `author`'s shows now.
pub fn changed_line(author: &Peer, shown: &Shown) -> String {
    if shown.deleted {
        format!("{} deleted a message", author.nick)
    } else {
        format!("{}'s message: {}", author.nick, shown_text(shown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerchat_client::about::Reaction;

    #[test]
    fn a_message_reads_with_its_edits_and_reactions() {
        let mut shown = Shown {
            text: "lunch at one?".into(),
            edited: true,
            deleted: false,
            reactions: vec![
                Reaction {
                    emoji: "👍".into(),
                    by: vec![("b".into(), "bob".into()), ("c".into(), "carol".into())],
                },
                Reaction {
                    emoji: "🎉".into(),
                    by: vec![("c".into(), "carol".into())],
                },
            ],
        };
        assert_eq!(
            shown_text(&shown),
            "lunch at one? (edited) [👍 bob, carol · 🎉 carol]"
        );
        let alice = Peer {
            id: "a".into(),
            nick: "alice".into(),
        };
        assert_eq!(
            changed_line(&alice, &shown),
            "alice's message: lunch at one? (edited) [👍 bob, carol · 🎉 carol]"
        );
        shown.deleted = true;
        assert_eq!(shown_text(&shown), "(message deleted)");
        assert_eq!(changed_line(&alice, &shown), "alice deleted a message");
    }
}
