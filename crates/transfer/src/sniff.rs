//! Media types recognised by content: the four image formats a receiver
//! may show (`docs/protocol.md`, "The offer"); nothing else is ever an
//! image, whatever its name says (an SVG, which can hold scripts, is not).

/// The media type of anything that is not one of the images below.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// How many bytes from the start of a file [`sniff`] needs at most.
pub const SNIFF_BYTES: usize = 12;

/// The image types peerchat shows.
pub const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The image type that `prefix` (the first bytes of a file, up to
/// [`SNIFF_BYTES`] of them) starts as: PNG, JPEG, GIF or WebP; `None` for
/// anything else.
pub fn sniff(prefix: &[u8]) -> Option<&'static str> {
    if prefix.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if prefix.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if prefix.starts_with(b"GIF87a") || prefix.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if prefix.len() >= 12 && &prefix[..4] == b"RIFF" && &prefix[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The media type peerchat writes in an offer for a file that starts with
/// `prefix`: its image type, or [`OCTET_STREAM`].
pub fn media_type(prefix: &[u8]) -> &'static str {
    sniff(prefix).unwrap_or(OCTET_STREAM)
}

/// Whether a received file may be shown as an image: its offer names one
/// of the image types, and its first bytes are that type's.
pub fn shows_as_image(offered: &str, prefix: &[u8]) -> bool {
    sniff(prefix) == Some(offered)
}
