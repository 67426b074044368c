//! Word wrapping by display width, done here rather than by the widget so
//! that the number of lines is known exactly: the lines made here are drawn
//! as they are, one terminal row each, never wrapped again.
//!
//! Widths are ratatui's own ([`CellWidth`], from `unicode-width`), per
//! grapheme cluster, so a wide (CJK, emoji) character counts two columns
//! and a combining sequence stays whole. What the terminal would not draw
//! (control characters, zero-width clusters) is left out, as ratatui leaves
//! it out; a tab becomes spaces and a line break starts a new line.

use ratatui::buffer::CellWidth;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_segmentation::UnicodeSegmentation;

/// Columns a tab stands for.
const TAB: usize = 4;

/// The display width of a string, as ratatui draws it.
pub fn width(text: &str) -> usize {
    text.graphemes(true).map(grapheme_width).sum()
}

/// The display width of one grapheme cluster; 0 for what is not drawn.
pub fn grapheme_width(g: &str) -> usize {
    if g == "\t" {
        TAB
    } else if g.contains(char::is_control) {
        0
    } else {
        usize::from(g.cell_width())
    }
}

/// A run of text with one style.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    /// The text; `\n` (or `\r\n`, `\r`) starts a new line.
    pub text: &'a str,
    /// How it is drawn.
    pub style: Style,
    /// Whether a line may break at a space inside it (false keeps a short
    /// run such as a status together).
    pub breakable: bool,
}

impl<'a> Piece<'a> {
    /// A run whose spaces are break opportunities.
    pub fn new(text: &'a str, style: Style) -> Self {
        Self {
            text,
            style,
            breakable: true,
        }
    }

    /// A run kept on one line where it fits.
    pub fn together(text: &'a str, style: Style) -> Self {
        Self {
            text,
            style,
            breakable: false,
        }
    }
}

#[derive(Debug, Clone)]
struct Token<'a> {
    text: &'a str,
    width: usize,
    style: Style,
    space: bool,
    breakable: bool,
}

/// Builds the rows of one entry.
struct Rows<'a> {
    rows: Vec<Vec<Token<'a>>>,
    row: Vec<Token<'a>>,
    used: usize,
    /// Columns on the current row.
    room: usize,
    /// Columns on every row after the first.
    rest: usize,
    /// Where the current row may break: the length of the row up to and
    /// including its last breakable space.
    break_at: Option<usize>,
    /// Whether the current row continues a wrapped line: spaces at its
    /// start are dropped.
    wrapped: bool,
}

impl<'a> Rows<'a> {
    /// Ends the row at a line break in the text.
    fn line_break(&mut self) {
        self.new_row();
        self.wrapped = false;
    }

    fn new_row(&mut self) {
        self.wrapped = true;
        while self.row.last().is_some_and(|t| t.space) {
            self.row.pop();
        }
        self.rows.push(std::mem::take(&mut self.row));
        self.used = 0;
        self.room = self.rest;
        self.break_at = None;
    }

    fn push(&mut self, token: Token<'a>) {
        if token.space && self.wrapped && self.row.is_empty() {
            return;
        }
        if self.used + token.width > self.room && !self.row.is_empty() {
            if token.space {
                // A space at the end of a row is not carried to the next.
                self.new_row();
                return;
            }
            match self.break_at.filter(|&at| at < self.row.len()) {
                Some(at) => {
                    let moved = self.row.split_off(at);
                    self.new_row();
                    for t in moved {
                        self.push(t);
                    }
                }
                // One word longer than the row: break it where it is full.
                None => self.new_row(),
            }
        }
        self.used += token.width;
        let breaks = token.space && token.breakable;
        self.row.push(token);
        if breaks {
            self.break_at = Some(self.row.len());
        }
    }
}

/// Wraps `pieces` to `width` columns: the first row starts after `prefix`
/// (already styled, not wrapped), every other row after `indent` columns
/// of blank, which makes a hanging indent. Each returned line is at most
/// `width` columns wide (a prefix wider than that gets a row of its own and
/// is cut by the terminal), so the lines are drawn one row each.
pub fn wrap(
    prefix: Vec<Span<'static>>,
    pieces: &[Piece<'_>],
    width: usize,
    indent: usize,
) -> Vec<Line<'static>> {
    let width = width.max(1);
    let indent = if indent < width { indent } else { 0 };
    let prefix_width: usize = prefix.iter().map(|s| self::width(&s.content)).sum();
    let rest = width - indent;
    let mut rows = Rows {
        rows: Vec::new(),
        row: Vec::new(),
        used: 0,
        room: width.saturating_sub(prefix_width),
        rest,
        break_at: None,
        wrapped: false,
    };
    if rows.room == 0 {
        rows.rows.push(Vec::new());
        rows.room = rest;
    }
    for piece in pieces {
        for g in piece.text.graphemes(true) {
            match g {
                "\r\n" | "\n" => rows.line_break(),
                "\r" => {}
                "\t" => {
                    for _ in 0..TAB {
                        rows.push(Token {
                            text: " ",
                            width: 1,
                            style: piece.style,
                            space: true,
                            breakable: piece.breakable,
                        });
                    }
                }
                g => {
                    let w = grapheme_width(g);
                    if w == 0 {
                        continue;
                    }
                    let space = g.chars().all(char::is_whitespace);
                    rows.push(Token {
                        text: g,
                        width: w,
                        style: piece.style,
                        space,
                        breakable: piece.breakable,
                    });
                }
            }
        }
    }
    rows.rows.push(std::mem::take(&mut rows.row));

    let pad = " ".repeat(indent);
    rows.rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let mut spans = if i == 0 {
                prefix.clone()
            } else if indent > 0 {
                vec![Span::raw(pad.clone())]
            } else {
                Vec::new()
            };
            let mut run = String::new();
            let mut style = None;
            for token in row {
                if style.is_some_and(|s| s != token.style) {
                    spans.push(Span::styled(
                        std::mem::take(&mut run),
                        style.unwrap_or_default(),
                    ));
                }
                style = Some(token.style);
                run.push_str(token.text);
            }
            if let Some(style) = style {
                spans.push(Span::styled(run, style));
            }
            Line::from(spans)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    fn rows(text: &str, width: usize, indent: usize) -> Vec<String> {
        plain(&wrap(
            vec![Span::raw("> ")],
            &[Piece::new(text, Style::new())],
            width,
            indent,
        ))
    }

    #[test]
    fn words_wrap_at_spaces_and_long_words_where_the_row_is_full() {
        assert_eq!(
            rows("internationalisation of conversations", 24, 2),
            ["> internationalisation", "  of conversations"]
        );
        assert_eq!(
            rows("abcdefghijklmnopqrstuvwxyz", 10, 2),
            ["> abcdefgh", "  ijklmnop", "  qrstuvwx", "  yz"]
        );
        // The space where a row breaks is dropped, others are kept.
        assert_eq!(rows("aaaa    bbbb", 8, 0), ["> aaaa", "bbbb"]);
        assert_eq!(rows("  indented", 20, 2), [">   indented"]);
    }

    #[test]
    fn every_row_fits_and_wide_characters_count_two_columns() {
        let text = "日本語のテキストは二列を占める 😀😀 e\u{301}e\u{301} end";
        for width in 3..30 {
            for line in wrap(vec![], &[Piece::new(text, Style::new())], width, 1) {
                assert!(line.width() <= width, "{width}: {line:?}");
            }
        }
        assert_eq!(rows("日本語の", 6, 2), ["> 日本", "  語の"]);
        // A combining sequence stays whole.
        assert_eq!(
            rows("e\u{301}e\u{301}e\u{301}", 4, 2),
            ["> e\u{301}e\u{301}", "  e\u{301}"]
        );
    }

    #[test]
    fn line_breaks_start_rows_and_control_characters_are_left_out() {
        assert_eq!(
            rows("line one\nline two\r\n\nafter a blank", 40, 2),
            ["> line one", "  line two", "  ", "  after a blank"]
        );
        assert_eq!(rows("a\u{1b}[31mb\u{7}\tc", 40, 0), ["> a[31mb    c"]);
    }

    #[test]
    fn a_run_kept_together_moves_to_the_next_row_whole() {
        let lines = wrap(
            vec![],
            &[
                Piece::new("hello there", Style::new()),
                Piece::new("  ", Style::new()),
                Piece::together("(✓ delivered)", Style::new().dim()),
            ],
            20,
            2,
        );
        assert_eq!(plain(&lines), ["hello there", "  (✓ delivered)"]);
        assert_eq!(lines[1].spans[1].style, Style::new().dim());
    }

    #[test]
    fn a_prefix_wider_than_the_row_gets_a_row_of_its_own() {
        let lines = wrap(
            vec![Span::raw("a-very-long-name: ")],
            &[Piece::new("hi", Style::new())],
            10,
            2,
        );
        assert_eq!(plain(&lines), ["a-very-long-name: ", "  hi"]);
    }
}
