//! A WebSocket's socket, buffered so that a connection holds no buffer
//! while it is idle.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes taken from a socket in one read, into the buffer that all
/// connections on a thread share.
const READ_CHUNK: usize = 16 * 1024;

/// Most bytes of frames gathered for one write to a socket.
const WRITE_CHUNK: usize = 16 * 1024;

thread_local! {
    /// The buffer each socket read lands in first, shared by all the
    /// connections a thread serves.
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// A WebSocket's socket, buffered so that a connection holds no buffer
/// while it is idle.
///
/// Reading: the WebSocket parser asks for a few hundred bytes at a time
/// (its buffer is kept small, since every connection has one); reading the
/// socket that way would take a system call for each. Instead each read
/// takes up to [`READ_CHUNK`] bytes into a buffer shared by the thread's
/// connections, hands the parser what it asked for, and keeps the rest here
/// until the parser takes it.
///
/// Each read hands the parser bytes up to the end of the frame under way
/// and no further ([`Frames`]), so that once the parser has a frame, its
/// buffer holds nothing more: the connection may then replace the parser,
/// giving back the buffer a large message grew (tungstenite never shrinks
/// it).
///
/// Writing: frames are gathered here, up to [`WRITE_CHUNK`] bytes, and
/// written together when the batch is flushed; the buffer is given back
/// once it is written.
#[derive(Debug)]
pub(crate) struct Socket<S> {
    io: S,
    /// Where the bytes handed to the parser are in the client's frames.
    frames: Frames,
    /// Bytes read from `io` that the parser has not taken yet.
    pending: Vec<u8>,
    /// How many of `pending` it has taken.
    taken: usize,
    /// Bytes to write to `io`.
    out: Vec<u8>,
    /// How many of `out` are written.
    written: usize,
}

impl<S> Socket<S> {
    /// `read` is what was read from `io` already (past the HTTP request).
    pub(crate) fn new(io: S, read: &[u8]) -> Self {
        Self {
            io,
            frames: Frames::default(),
            pending: read.to_vec(),
            taken: 0,
            out: Vec::new(),
            written: 0,
        }
    }

    /// Whether every byte handed to the parser belongs to a frame that is
    /// complete: the parser holds no part of a frame.
    pub(crate) fn at_frame_boundary(&self) -> bool {
        self.frames.at_boundary()
    }

    /// Hands over pending bytes; false when there are none.
    fn take_pending(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let rest = &self.pending[self.taken..];
        if rest.is_empty() {
            return false;
        }
        let n = rest.len().min(buf.remaining());
        let n = self.frames.advance(&rest[..n]);
        buf.put_slice(&rest[..n]);
        self.taken += n;
        if self.taken == self.pending.len() {
            self.pending = Vec::new();
            self.taken = 0;
        }
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Socket<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.take_pending(buf) {
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= READ_CHUNK {
            let start = buf.filled().len();
            ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
            let read = &buf.filled()[start..];
            let n = this.frames.advance(read);
            if n < read.len() {
                this.pending = read[n..].to_vec();
                this.taken = 0;
                buf.set_filled(start + n);
            }
            return Poll::Ready(Ok(()));
        }
        READ_BUFFER.with_borrow_mut(|chunk| {
            let mut read = ReadBuf::new(chunk);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
            let read = read.filled();
            let n = read.len().min(buf.remaining());
            let n = this.frames.advance(&read[..n]);
            buf.put_slice(&read[..n]);
            if n < read.len() {
                this.pending = read[n..].to_vec();
                this.taken = 0;
            }
            Poll::Ready(Ok(()))
        })
    }
}

/// Follows the client's WebSocket frames (RFC 6455, section 5.2) through
/// the bytes handed to the parser, to tell where each frame ends.
#[derive(Debug, Default)]
struct Frames {
    /// The header of the next frame, as far as it has been handed over.
    head: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame not handed over yet.
    payload: u64,
}

impl Frames {
    fn at_boundary(&self) -> bool {
        self.have == 0 && self.payload == 0
    }

    /// The header's length, once its first two bytes are known.
    fn header_len(&self) -> Option<usize> {
        if self.have < 2 {
            return None;
        }
        let masked = self.head[1] & 0x80 != 0;
        let extended = match self.head[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        Some(2 + extended + if masked { 4 } else { 0 })
    }

    /// The payload length of a complete header.
    fn payload_len(&self) -> u64 {
        match self.head[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
            127 => u64::from_be_bytes(self.head[2..10].try_into().unwrap_or_default()),
            n => u64::from(n),
        }
    }

    /// Follows `data` up to the end of the frame under way, and returns how
    /// many of its bytes that is (all of them if the frame goes on; at
    /// least one if there are any).
    fn advance(&mut self, data: &[u8]) -> usize {
        let mut at = 0;
        while at < data.len() {
            if self.payload > 0 {
                let n = usize::try_from(self.payload)
                    .unwrap_or(usize::MAX)
                    .min(data.len() - at);
                self.payload -= n as u64;
                at += n;
                if self.payload == 0 {
                    return at;
                }
                continue;
            }
            self.head[self.have] = data[at];
            self.have += 1;
            at += 1;
            if self.header_len() == Some(self.have) {
                self.payload = self.payload_len();
                self.have = 0;
                if self.payload == 0 {
                    return at;
                }
            }
        }
        at
    }
}

impl<S: AsyncWrite + Unpin> Socket<S> {
    /// Writes out everything gathered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.out = Vec::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Socket<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.out.len() + buf.len() > WRITE_CHUNK {
            ready!(this.poll_drain(cx))?;
            if buf.len() >= WRITE_CHUNK {
                return Pin::new(&mut this.io).poll_write(cx, buf);
            }
        }
        this.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Reads everything through a `Socket`, `ask` bytes at a time, as the
    /// WebSocket parser does.
    async fn read_all<S: AsyncRead + Unpin>(socket: &mut Socket<S>, ask: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = vec![0; ask];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }

    #[tokio::test]
    async fn a_socket_hands_over_every_byte_in_order_and_then_holds_none() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for ask in [1, 14, 512, READ_CHUNK, 3 * READ_CHUNK] {
            let (mut client, server) = tokio::io::duplex(64 * 1024);
            let mut socket = Socket::new(server, &data[..10]);
            let rest = data[10..].to_vec();
            let writer = tokio::spawn(async move {
                client.write_all(&rest).await.unwrap();
            });
            let got = read_all(&mut socket, ask).await;
            writer.await.unwrap();
            assert!(got == data, "asking for {ask} bytes at a time");
            assert_eq!(socket.pending.capacity(), 0);
        }
    }

    /// A masked frame with `payload`.
    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x81];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 65536 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.extend_from_slice(payload);
        f
    }

    #[tokio::test]
    async fn a_socket_hands_over_no_byte_past_the_end_of_a_frame() {
        let sizes = [0, 5, 125, 126, 300, 65535, 65536, 70_000];
        let mut data = Vec::new();
        let mut ends = Vec::new();
        for size in sizes {
            data.extend(frame(&vec![b'x'; size]));
            ends.push(data.len());
        }
        for ask in [1, 7, 512, READ_CHUNK, 3 * READ_CHUNK] {
            let (mut client, server) = tokio::io::duplex(256 * 1024);
            let mut socket = Socket::new(server, &data[..3]);
            let rest = data[3..].to_vec();
            let writer = tokio::spawn(async move {
                client.write_all(&rest).await.unwrap();
            });
            let mut got = 0;
            let mut buf = vec![0; ask];
            while got < data.len() {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0);
                let next_end = ends.iter().find(|&&e| e > got).unwrap();
                got += n;
                assert!(got <= *next_end, "asking for {ask}: crossed a frame's end");
                assert_eq!(socket.at_frame_boundary(), ends.contains(&got));
            }
            writer.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_socket_writes_every_byte_in_order_when_flushed_and_then_holds_none() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for size in [1, 300, WRITE_CHUNK - 1, WRITE_CHUNK, 3 * WRITE_CHUNK] {
            // A pipe smaller than what is written, so that writes block.
            let (client, mut server) = tokio::io::duplex(4096);
            let mut socket = Socket::new(client, &[]);
            let expected = data.clone();
            let reader = tokio::spawn(async move {
                let mut got = Vec::new();
                server.read_to_end(&mut got).await.unwrap();
                got
            });
            for chunk in data.chunks(size) {
                socket.write_all(chunk).await.unwrap();
                assert!(socket.out.len() <= WRITE_CHUNK);
            }
            socket.flush().await.unwrap();
            assert_eq!(socket.out.capacity(), 0);
            socket.shutdown().await.unwrap();
            drop(socket);
            assert!(
                reader.await.unwrap() == expected,
                "writing {size} bytes at a time"
            );
        }
    }
}
