//! SHA-256 of files, per piece and whole, computed as the bytes go by.

use peerchat_protocol::file::{FileMeta, MAX_PIECE, MAX_PIECES};
use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The piece size peerchat chooses starts here (256 KiB).
pub const BASE_PIECE: u64 = 1 << 18;

/// peerchat cuts a file into at most this many pieces, while the piece size
/// stays under [`MAX_PIECE`].
pub const TARGET_PIECES: u64 = 4096;

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// The commitment to a hash list: the SHA-256 of the hashes concatenated.
pub fn root_of(hashes: &[Hash]) -> Hash {
    let mut h = Sha256::new();
    for hash in hashes {
        h.update(hash);
    }
    h.finalize().into()
}

/// The piece size peerchat writes in an offer for a file of `size` bytes:
/// the smallest power of two from [`BASE_PIECE`] that cuts it into at most
/// [`TARGET_PIECES`] pieces, at most [`MAX_PIECE`]; `None` for a file too
/// large to offer (over 65,536 pieces of 16 MiB, 1 TiB).
pub fn piece_size_for(size: u64) -> Option<u64> {
    let mut piece = BASE_PIECE;
    while piece < MAX_PIECE && size.div_ceil(piece) > TARGET_PIECES {
        piece *= 2;
    }
    (size.div_ceil(piece) <= MAX_PIECES).then_some(piece)
}

/// What [`FileHasher`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// The file's size.
    pub size: u64,
    /// The piece size.
    pub piece: u64,
    /// The SHA-256 of the whole file.
    pub sha256: Hash,
    /// Each piece's SHA-256, in order.
    pub pieces: Vec<Hash>,
    /// [`root_of`] the pieces' hashes.
    pub root: Hash,
}

impl Digests {
    /// An offer of this file.
    pub fn offer(&self, fid: &str, name: &str, mime: &str) -> FileMeta {
        FileMeta {
            fid: fid.to_owned(),
            name: name.to_owned(),
            size: self.size,
            mime: mime.to_owned(),
            piece: self.piece,
            sha256: self.sha256,
            root: self.root,
        }
    }
}

/// Hashes a file fed in order, in slices of any size: its SHA-256 and its
/// pieces'.
#[derive(Debug, Clone)]
pub struct FileHasher {
    piece: u64,
    whole: Sha256,
    current: Sha256,
    in_piece: u64,
    size: u64,
    pieces: Vec<Hash>,
}

impl FileHasher {
    /// A hasher for pieces of `piece` bytes (at least 1).
    pub fn new(piece: u64) -> Self {
        Self {
            piece: piece.max(1),
            whole: Sha256::new(),
            current: Sha256::new(),
            in_piece: 0,
            size: 0,
            pieces: Vec::new(),
        }
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.whole.update(bytes);
        self.size += bytes.len() as u64;
        while !bytes.is_empty() {
            let room = usize::try_from(self.piece - self.in_piece).unwrap_or(usize::MAX);
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.current.update(now);
            self.in_piece += now.len() as u64;
            if self.in_piece == self.piece {
                let done = std::mem::take(&mut self.current);
                self.pieces.push(done.finalize().into());
                self.in_piece = 0;
            }
            bytes = rest;
        }
    }

    /// The hashes of what was fed.
    pub fn finish(mut self) -> Digests {
        if self.in_piece > 0 {
            self.pieces.push(self.current.finalize().into());
        }
        Digests {
            size: self.size,
            piece: self.piece,
            sha256: self.whole.finalize().into(),
            root: root_of(&self.pieces),
            pieces: self.pieces,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerchat_protocol::file::EMPTY_SHA256;

    #[test]
    fn pieces_and_sizes() {
        assert_eq!(piece_size_for(0), Some(BASE_PIECE));
        assert_eq!(piece_size_for(1 << 30), Some(BASE_PIECE));
        assert_eq!(piece_size_for((1 << 30) + 1), Some(BASE_PIECE * 2));
        assert_eq!(piece_size_for(1 << 40), Some(MAX_PIECE));
        assert_eq!(piece_size_for((1 << 40) + 1), None);
        let empty = FileHasher::new(BASE_PIECE).finish();
        assert_eq!((empty.sha256, empty.root), (EMPTY_SHA256, EMPTY_SHA256));
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut h = FileHasher::new(16_384);
        for part in data.chunks(777) {
            h.update(part);
        }
        let d = h.finish();
        assert_eq!(d.sha256, sha256(&data));
        assert_eq!(d.pieces.len(), 7);
        assert_eq!(d.pieces[6], sha256(&data[6 * 16_384..]));
        assert_eq!(d.root, root_of(&d.pieces));
    }
}
