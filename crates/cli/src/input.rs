//! The text being written: editing at a cursor, recall of what was sent,
//! and its layout in rows.
//!
//! The cursor moves by grapheme cluster, so a combining sequence or an
//! emoji made of several code points is one step, and is placed by display
//! width, so a wide (CJK) character takes two columns. The text may hold
//! line breaks; its rows wrap at the width of the box, by cluster.

use std::collections::VecDeque;

use unicode_segmentation::UnicodeSegmentation;

use crate::wrap::grapheme_width;

/// How many sent lines Up can recall.
const HISTORY: usize = 100;
/// The most text the input holds, in bytes: four times the largest
/// message, so an overlong one can still be seen and cut down, while a
/// runaway paste cannot make every key press slow.
pub const MAX_BYTES: usize = 4 * peerchat_protocol::MAX_TEXT_BYTES;

/// The input line's text, cursor and recall history.
#[derive(Debug, Clone, Default)]
pub struct Input {
    text: String,
    /// A byte offset into `text`, on a cluster boundary.
    cursor: usize,
    /// What was sent, oldest first.
    history: VecDeque<String>,
    /// The entry of `history` being shown, while recalling.
    recalled: Option<usize>,
    /// What was being written before recalling began.
    draft: String,
}

/// A row of the laid-out text: a byte range, without its line break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// Where the row starts.
    pub start: usize,
    /// Where it ends.
    pub end: usize,
}

impl Input {
    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether there is no text.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The cursor, as a byte offset into [`Input::text`].
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Inserts typed or pasted text at the cursor. Line breaks of any kind
    /// become `\n`, a tab becomes spaces, other control characters are
    /// dropped; what would take the text past [`MAX_BYTES`] is left out.
    pub fn insert(&mut self, text: &str) {
        let room = MAX_BYTES.saturating_sub(self.text.len());
        let mut clean = String::with_capacity(text.len().min(room));
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if clean.len() + 4 > room {
                break;
            }
            match c {
                '\r' => {
                    chars.next_if_eq(&'\n');
                    clean.push('\n');
                }
                '\n' => clean.push('\n'),
                '\t' => clean.push_str("    "),
                c if c.is_control() => {}
                c => clean.push(c),
            }
        }
        self.text.insert_str(self.cursor, &clean);
        self.cursor += clean.len();
        // An inserted mark may join the cluster before it.
        self.cursor = self.boundary_at_or_after(self.cursor);
    }

    /// Replaces the bytes `range` of the text (on character boundaries)
    /// with `with`, and puts the cursor after it: a completed name.
    pub fn replace(&mut self, range: std::ops::Range<usize>, with: &str) {
        self.text.replace_range(range.clone(), with);
        self.cursor = range.start + with.len();
    }

    /// Inserts a line break at the cursor.
    pub fn newline(&mut self) {
        self.insert("\n");
    }

    /// Empties the text (the recall history stays).
    pub fn clear(&mut self) {
        self.text.clear();
        self.cursor = 0;
        self.recalled = None;
    }

    /// Takes the text to send, remembering it for recall.
    pub fn take(&mut self) -> String {
        let text = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.recalled = None;
        self.draft.clear();
        if !text.trim().is_empty() && self.history.back() != Some(&text) {
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(text.clone());
        }
        text
    }

    fn prev_boundary(&self, at: usize) -> usize {
        self.text[..at]
            .grapheme_indices(true)
            .next_back()
            .map_or(0, |(i, _)| i)
    }

    fn next_boundary(&self, at: usize) -> usize {
        self.text[at..]
            .graphemes(true)
            .next()
            .map_or(at, |g| at + g.len())
    }

    fn boundary_at_or_after(&self, at: usize) -> usize {
        self.text
            .grapheme_indices(true)
            .map(|(i, _)| i)
            .find(|&i| i >= at)
            .unwrap_or(self.text.len())
    }

    /// One cluster left.
    pub fn left(&mut self) {
        self.cursor = self.prev_boundary(self.cursor);
    }

    /// One cluster right.
    pub fn right(&mut self) {
        self.cursor = self.next_boundary(self.cursor);
    }

    /// To the start of the previous word.
    pub fn word_left(&mut self) {
        let mut at = self.cursor;
        let mut seen_word = false;
        for (i, g) in self.text[..self.cursor].grapheme_indices(true).rev() {
            let space = is_space(g);
            if space && seen_word {
                break;
            }
            seen_word |= !space;
            at = i;
        }
        self.cursor = at;
    }

    /// To the end of the next word.
    pub fn word_right(&mut self) {
        let mut at = self.cursor;
        let mut seen_word = false;
        for (i, g) in self.text[self.cursor..].grapheme_indices(true) {
            let space = is_space(g);
            if space && seen_word {
                break;
            }
            seen_word |= !space;
            at = self.cursor + i + g.len();
        }
        self.cursor = at;
    }

    /// Where the line the cursor is on starts and ends.
    fn line_bounds(&self) -> (usize, usize) {
        let start = self.text[..self.cursor].rfind('\n').map_or(0, |i| i + 1);
        let end = self.text[self.cursor..]
            .find('\n')
            .map_or(self.text.len(), |i| self.cursor + i);
        (start, end)
    }

    /// To the start of the line.
    pub fn home(&mut self) {
        self.cursor = self.line_bounds().0;
    }

    /// To the end of the line.
    pub fn end(&mut self) {
        self.cursor = self.line_bounds().1;
    }

    /// Deletes the cluster before the cursor.
    pub fn backspace(&mut self) {
        let from = self.prev_boundary(self.cursor);
        self.text.replace_range(from..self.cursor, "");
        self.cursor = from;
    }

    /// Deletes the cluster at the cursor.
    pub fn delete(&mut self) {
        let to = self.next_boundary(self.cursor);
        self.text.replace_range(self.cursor..to, "");
    }

    /// Deletes the word before the cursor.
    pub fn delete_word(&mut self) {
        let to = self.cursor;
        self.word_left();
        self.text.replace_range(self.cursor..to, "");
    }

    /// Deletes from the start of the line to the cursor (at the start of a
    /// line, the line break before it).
    pub fn delete_to_start(&mut self) {
        let (start, _) = self.line_bounds();
        if start == self.cursor {
            self.backspace();
        } else {
            self.text.replace_range(start..self.cursor, "");
            self.cursor = start;
        }
    }

    /// Deletes from the cursor to the end of the line (at its end, the line
    /// break).
    pub fn delete_to_end(&mut self) {
        let (_, end) = self.line_bounds();
        if end == self.cursor {
            self.delete();
        } else {
            self.text.replace_range(self.cursor..end, "");
        }
    }

    /// Shows the previous sent line; false when there is none.
    pub fn recall_older(&mut self) -> bool {
        let at = match self.recalled {
            None if self.history.is_empty() => return false,
            None => {
                self.draft = std::mem::take(&mut self.text);
                self.history.len() - 1
            }
            Some(0) => return false,
            Some(i) => i - 1,
        };
        self.show_recalled(Some(at));
        true
    }

    /// Shows the next sent line, or the draft after the newest; false when
    /// not recalling.
    pub fn recall_newer(&mut self) -> bool {
        match self.recalled {
            None => false,
            Some(i) if i + 1 < self.history.len() => {
                self.show_recalled(Some(i + 1));
                true
            }
            Some(_) => {
                self.show_recalled(None);
                true
            }
        }
    }

    fn show_recalled(&mut self, at: Option<usize>) {
        self.recalled = at;
        self.text = match at {
            Some(i) => self.history[i].clone(),
            None => std::mem::take(&mut self.draft),
        };
        self.cursor = self.text.len();
    }

    /// The rows of the text in a box `width` columns wide: broken at line
    /// breaks, and wrapped by cluster where a row is full. When the cursor
    /// is at the end of a full row, an empty row follows for it.
    pub fn rows(&self, width: usize) -> Vec<Row> {
        let width = width.max(1);
        let mut rows = Vec::new();
        let mut start = 0;
        let mut used = 0;
        for (i, g) in self.text.grapheme_indices(true) {
            if g == "\n" {
                rows.push(Row { start, end: i });
                start = i + 1;
                used = 0;
                continue;
            }
            let w = grapheme_width(g);
            if used + w > width && used > 0 {
                rows.push(Row { start, end: i });
                start = i;
                used = 0;
            }
            used += w;
        }
        rows.push(Row {
            start,
            end: self.text.len(),
        });
        if used >= width && self.cursor == self.text.len() {
            rows.push(Row {
                start: self.text.len(),
                end: self.text.len(),
            });
        }
        rows
    }

    /// The cursor's row (an index into [`Input::rows`]) and column.
    pub fn cursor_at(&self, width: usize) -> (usize, usize) {
        let rows = self.rows(width);
        // At a wrap, the cursor stands at the start of the later row.
        let row = rows
            .iter()
            .rposition(|r| r.start <= self.cursor && self.cursor <= r.end)
            .unwrap_or(0);
        let start = rows[row].start;
        let col = crate::wrap::width(&self.text[start..self.cursor]);
        (row, col)
    }

    /// One row up, at the same column; false on the first row.
    pub fn up(&mut self, width: usize) -> bool {
        let (row, col) = self.cursor_at(width);
        if row == 0 {
            return false;
        }
        self.cursor = self.offset_at(self.rows(width)[row - 1], col);
        true
    }

    /// One row down, at the same column; false on the last row.
    pub fn down(&mut self, width: usize) -> bool {
        let (row, col) = self.cursor_at(width);
        let rows = self.rows(width);
        match rows.get(row + 1) {
            Some(next) => {
                self.cursor = self.offset_at(*next, col);
                true
            }
            None => false,
        }
    }

    /// The offset in `row` closest to column `col`, not past it.
    fn offset_at(&self, row: Row, col: usize) -> usize {
        let mut used = 0;
        for (i, g) in self.text[row.start..row.end].grapheme_indices(true) {
            used += grapheme_width(g);
            if used > col {
                return row.start + i;
            }
        }
        row.end
    }
}

fn is_space(g: &str) -> bool {
    g.chars().all(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(text: &str) -> Input {
        let mut input = Input::default();
        input.insert(text);
        input
    }

    /// The text with `|` at the cursor.
    fn shown(input: &Input) -> String {
        let mut text = input.text().to_owned();
        text.insert(input.cursor(), '|');
        text
    }

    #[test]
    fn the_cursor_moves_by_cluster_and_by_word() {
        let mut i = input("say e\u{301}🇫🇷 now");
        i.left();
        i.left();
        i.left();
        i.left();
        assert_eq!(shown(&i), "say e\u{301}🇫🇷| now");
        i.left();
        assert_eq!(shown(&i), "say e\u{301}|🇫🇷 now");
        i.backspace();
        assert_eq!(shown(&i), "say |🇫🇷 now");
        i.delete();
        assert_eq!(shown(&i), "say | now");
        i.word_right();
        assert_eq!(shown(&i), "say  now|");
        i.word_left();
        i.word_left();
        assert_eq!(shown(&i), "|say  now");
        i.word_right();
        assert_eq!(shown(&i), "say|  now");
        i.end();
        i.delete_word();
        assert_eq!(shown(&i), "say  |");
    }

    #[test]
    fn home_end_and_deleting_work_on_the_line_of_the_cursor() {
        let mut i = input("first line\nsecond line");
        i.home();
        assert_eq!(shown(&i), "first line\n|second line");
        i.word_right();
        i.delete_to_start();
        assert_eq!(shown(&i), "first line\n| line");
        i.delete_to_start();
        assert_eq!(shown(&i), "first line| line");
        i.home();
        i.delete_to_end();
        assert_eq!(shown(&i), "|");
    }

    #[test]
    fn pasted_text_is_cleaned() {
        assert_eq!(input("a\r\nb\rc\td\u{1b}[0m").text(), "a\nb\nc    d[0m");
        // A runaway paste stops at the limit.
        let mut i = input(&"x".repeat(MAX_BYTES));
        i.insert("more");
        assert!(i.text().len() <= MAX_BYTES);
        // A combining mark typed after a letter joins it.
        let mut i = input("e");
        i.insert("\u{301}");
        assert_eq!(i.cursor(), "e\u{301}".len());
    }

    #[test]
    fn rows_wrap_by_width_and_the_cursor_stands_by_width() {
        let mut i = input("日本語のテキスト\nok");
        // 8 wide characters in 5 columns: two per row.
        let rows: Vec<&str> = i
            .rows(5)
            .iter()
            .map(|r| &i.text()[r.start..r.end])
            .collect();
        assert_eq!(rows, ["日本", "語の", "テキ", "スト", "ok"]);
        assert_eq!(i.cursor_at(5), (4, 2));
        assert!(i.up(5));
        assert_eq!(i.cursor_at(5), (3, 2));
        assert_eq!(shown(&i), "日本語のテキス|ト\nok");
        i.up(5);
        i.up(5);
        i.up(5);
        assert!(!i.up(5));
        assert_eq!(shown(&i), "日|本語のテキスト\nok");
        assert!(i.down(5));
        assert_eq!(shown(&i), "日本語|のテキスト\nok");
        i.end();
        assert!(i.down(5));
        assert_eq!(shown(&i), "日本語のテキスト\nok|");
        assert!(!i.down(5));
        // A full last row puts the cursor on a new one.
        let i = input("abcde");
        assert_eq!(i.rows(5).len(), 2);
        assert_eq!(i.cursor_at(5), (1, 0));
        assert_eq!(i.cursor_at(6), (0, 5));
    }

    #[test]
    fn recall_goes_back_through_what_was_sent_and_returns_to_the_draft() {
        let mut i = Input::default();
        assert!(!i.recall_older());
        for text in ["one", "two", "two", "  "] {
            i.insert(text);
            i.take();
        }
        i.insert("draft");
        assert!(i.recall_older());
        assert_eq!(i.text(), "two");
        assert!(i.recall_older());
        assert_eq!(i.text(), "one");
        assert!(!i.recall_older());
        assert!(i.recall_newer());
        assert!(i.recall_newer());
        assert_eq!(shown(&i), "draft|");
        assert!(!i.recall_newer());
        for n in 0..2 * HISTORY {
            i.insert(&n.to_string());
            i.take();
        }
        assert_eq!(i.history.len(), HISTORY);
    }
}
