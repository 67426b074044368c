//! Where a log of entries, each drawn as one or more rows, is scrolled to.
//!
//! The position is kept as the entry and row at the top of the view, so
//! reading back is not disturbed by new entries arriving below, and every
//! step looks at no more entries than one screen holds: the number of rows
//! of an entry comes from the caller (`rows(i)`, at least 1), measured as
//! the entry is drawn.

/// The scroll position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scroll {
    /// Following the newest entries: the last row is at the bottom.
    #[default]
    Follow,
    /// Scrolled back: row `row` of entry `entry` is at the top.
    At {
        /// The entry at the top.
        entry: usize,
        /// Its first row shown.
        row: usize,
    },
}

/// A row of the log: entry and row within it.
pub type Pos = (usize, usize);

/// The entries and their heights, and the height of the view.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// How many entries there are.
    pub count: usize,
    /// Rows of the view.
    pub height: usize,
    /// Rows of entry `i` (at least 1).
    pub rows: &'a dyn Fn(usize) -> usize,
}

impl std::fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("count", &self.count)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl View<'_> {
    fn rows_of(&self, entry: usize) -> usize {
        (self.rows)(entry).max(1)
    }

    /// The top row when following: the last `height` rows, or from the
    /// start when everything fits.
    fn bottom(&self) -> Pos {
        let mut above = self.height;
        for entry in (0..self.count).rev() {
            let rows = self.rows_of(entry);
            if rows >= above {
                return (entry, rows - above);
            }
            above -= rows;
        }
        (0, 0)
    }

    /// Whether everything from `pos` on fits in the view.
    fn fits_from(&self, (entry, row): Pos) -> bool {
        let mut rows = 0;
        for i in entry..self.count {
            rows += self.rows_of(i) - if i == entry { row } else { 0 };
            if rows > self.height {
                return false;
            }
        }
        true
    }
}

impl Scroll {
    /// The top row of the view. A position below the bottom (the view was
    /// made taller, or entries went away) shows the bottom.
    pub fn top(self, view: View<'_>) -> Pos {
        match self {
            Self::Follow => view.bottom(),
            Self::At { entry, .. } if entry >= view.count => view.bottom(),
            Self::At { entry, row } => {
                let pos = (entry, row.min(view.rows_of(entry) - 1));
                if view.fits_from(pos) {
                    view.bottom()
                } else {
                    pos
                }
            }
        }
    }

    /// Whether the view is scrolled back from the newest rows.
    pub fn is_back(self) -> bool {
        matches!(self, Self::At { .. })
    }

    /// Scrolls `n` rows towards the start, stopping at the first row.
    pub fn up(&mut self, n: usize, view: View<'_>) {
        let (mut entry, mut row) = self.top(view);
        let mut n = n;
        while n > 0 {
            if row >= n {
                row -= n;
                break;
            }
            n -= row;
            if entry == 0 {
                row = 0;
                break;
            }
            entry -= 1;
            row = view.rows_of(entry);
        }
        *self = if (entry, row) == view.bottom() {
            Self::Follow
        } else {
            Self::At { entry, row }
        };
    }

    /// Scrolls `n` rows towards the newest, following them again once
    /// the last row is in view.
    pub fn down(&mut self, n: usize, view: View<'_>) {
        let (mut entry, mut row) = self.top(view);
        let mut n = n;
        while n > 0 && entry < view.count {
            let left = view.rows_of(entry) - row;
            if left > n {
                row += n;
                break;
            }
            n -= left;
            entry += 1;
            row = 0;
        }
        *self = if entry >= view.count || view.fits_from((entry, row)) {
            Self::Follow
        } else {
            Self::At { entry, row }
        };
    }

    /// Scrolls to the first row.
    pub fn home(&mut self, view: View<'_>) {
        *self = if view.fits_from((0, 0)) {
            Self::Follow
        } else {
            Self::At { entry: 0, row: 0 }
        };
    }

    /// An entry was inserted at `at`: the same rows stay in view.
    pub fn inserted(&mut self, at: usize) {
        if let Self::At { entry, .. } = self {
            if at <= *entry {
                *entry += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entry `i` has `i % 3 + 1` rows: 1, 2, 3, 1, 2, 3, …
    fn rows(i: usize) -> usize {
        i % 3 + 1
    }

    fn view(count: usize, height: usize) -> View<'static> {
        View {
            count,
            height,
            rows: &rows,
        }
    }

    #[test]
    fn following_shows_the_last_rows() {
        // 10 entries: 1+2+3+1+2+3+1+2+3+1 = 19 rows.
        assert_eq!(Scroll::Follow.top(view(10, 5)), (7, 1));
        assert_eq!(Scroll::Follow.top(view(10, 4)), (8, 0));
        assert_eq!(Scroll::Follow.top(view(10, 30)), (0, 0));
        assert_eq!(Scroll::Follow.top(view(0, 5)), (0, 0));
    }

    #[test]
    fn scrolling_stops_at_the_first_row_and_follows_again_at_the_last() {
        let v = view(10, 5);
        let mut s = Scroll::Follow;
        s.up(3, v);
        assert_eq!(s, Scroll::At { entry: 5, row: 2 });
        for _ in 0..100 {
            s.up(5, v);
        }
        assert_eq!(s, Scroll::At { entry: 0, row: 0 });
        // One page down moves at once: nothing was piled up past the top.
        s.down(5, v);
        assert_eq!(s.top(v), (2, 2));
        // 19 rows, 5 in view: the bottom is 14 rows below the top.
        s.home(v);
        s.down(13, v);
        assert!(s.is_back());
        s.down(1, v);
        assert_eq!(s, Scroll::Follow);
        s.down(5, v);
        assert_eq!(s, Scroll::Follow);
        s.home(v);
        s.down(1000, v);
        assert_eq!(s, Scroll::Follow);
    }

    #[test]
    fn nothing_scrolls_when_everything_fits() {
        let v = view(3, 10);
        let mut s = Scroll::Follow;
        s.up(5, v);
        assert_eq!(s, Scroll::Follow);
        s.home(v);
        assert_eq!(s, Scroll::Follow);
    }

    #[test]
    fn entries_inserted_above_keep_the_view_and_a_taller_view_shows_the_bottom() {
        let mut s = Scroll::At { entry: 4, row: 1 };
        s.inserted(7);
        assert_eq!(s, Scroll::At { entry: 4, row: 1 });
        s.inserted(2);
        assert_eq!(s, Scroll::At { entry: 5, row: 1 });
        assert_eq!(s.top(view(10, 50)), (0, 0));
        assert_eq!(Scroll::At { entry: 40, row: 0 }.top(view(10, 5)), (7, 1));
    }
}
