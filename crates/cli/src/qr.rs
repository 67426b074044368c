//! The room link as a QR code in the terminal (`/qr`), encoded by the
//! `qrcode` crate and drawn with half-block characters, two rows of modules
//! to a line, so that a link with its secret fits an 80×24 terminal. Light
//! modules are drawn as blocks and dark ones as blanks: on the usual dark
//! terminal the code reads the right way round (the full-screen view also
//! paints it white on black).

use qrcode::{Color, EcLevel, QrCode};

/// Light modules around the code (the standard asks for four; two read
/// well on a screen and keep the code within 24 rows).
const MARGIN: usize = 2;

/// Why a link cannot be drawn.
#[derive(Debug, thiserror::Error)]
#[error("the link is too long for a QR code: {0}")]
pub struct QrError(#[from] qrcode::types::QrError);

/// The lines of a QR code of `text`: each character is two modules, one
/// above the other; light is drawn, dark is blank.
pub fn lines(text: &str) -> Result<Vec<String>, QrError> {
    // Low error correction keeps the code small enough for 24 rows.
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L)?;
    let size = code.width();
    let colors = code.to_colors();
    let side = size + 2 * MARGIN;
    let light = |x: usize, y: usize| {
        let inside = (MARGIN..MARGIN + size).contains(&x) && (MARGIN..MARGIN + size).contains(&y);
        !inside || colors[(y - MARGIN) * size + (x - MARGIN)] == Color::Light
    };
    Ok((0..side.div_ceil(2))
        .map(|row| {
            (0..side)
                .map(|x| {
                    let top = light(x, 2 * row);
                    // Below the last row: more margin.
                    let bottom = 2 * row + 1 >= side || light(x, 2 * row + 1);
                    match (top, bottom) {
                        (true, true) => '█',
                        (true, false) => '▀',
                        (false, true) => '▄',
                        (false, false) => ' ',
                    }
                })
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_link_with_a_secret_fits_80_by_24() {
        let link = format!(
            "https://chat.example.org:8443/r/{}#{}",
            "A".repeat(22),
            "s".repeat(43)
        );
        let lines = lines(&link).unwrap();
        // Room for a title line and a hint below it.
        assert!(lines.len() <= 22, "{} lines", lines.len());
        // The margin: a light first line, light columns at both ends.
        assert!(lines[0].chars().all(|c| c == '█'));
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with("██") && l.ends_with("██"))
        );
        assert!(lines.iter().all(|l| l.chars().count() <= 80));
        assert!(
            lines
                .iter()
                .all(|l| l.chars().count() == lines[0].chars().count())
        );
        // Half blocks, full blocks and blanks only.
        assert!(
            lines
                .iter()
                .flat_map(|l| l.chars())
                .all(|c| " ▀▄█".contains(c))
        );
    }

    #[test]
    fn the_modules_are_the_encoders() {
        use qrcode::render::unicode::Dense1x2;
        let link = "http://127.0.0.1:8080/r/AAAAAAAAAAAAAAAAAAAAAA";
        let ours = lines(link).unwrap();
        let code = QrCode::with_error_correction_level(link.as_bytes(), EcLevel::L).unwrap();
        let theirs = code
            .render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(false)
            .build();
        let theirs: Vec<&str> = theirs.lines().collect();
        // Between the margins, line for line (but the last, half margin).
        for (i, line) in theirs[..theirs.len() - 1].iter().enumerate() {
            let inner: String = ours[i + 1]
                .chars()
                .skip(MARGIN)
                .take(code.width())
                .collect();
            assert_eq!(&inner, line, "line {i}");
        }
    }
}
