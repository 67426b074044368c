//! How TURN messages are framed when a client reaches its relay over TCP or
//! TLS (RFC 8656 §12.5): STUN messages carry their own length, ChannelData
//! messages theirs padded to a multiple of 4 bytes. Both the relay and the
//! native client's TCP/TLS bridge cut streams into messages with this.

/// The length of the message at the start of `buf`, framing included, once
/// its first four bytes are there; `None` when those bytes start neither a
/// STUN nor a ChannelData message (or are not all there yet, see
/// [`frame_len`]'s callers).
pub fn frame_len(buf: &[u8]) -> Option<usize> {
    let head = buf.get(..4)?;
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    match head[0] >> 6 {
        // STUN: a 20-byte header, attributes of a length that is a
        // multiple of 4.
        0b00 => (len % 4 == 0).then_some(20 + len),
        // ChannelData (channel numbers 0x4000 to 0x7FFF), padded to 4 bytes
        // over streams.
        0b01 => Some(4 + len.div_ceil(4) * 4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::frame_len;

    #[test]
    fn stun_and_channel_data_are_framed_by_their_length() {
        // A STUN binding request with no attributes.
        assert_eq!(frame_len(&[0x00, 0x01, 0x00, 0x00, 0x21, 0x12]), Some(20));
        // STUN with 8 bytes of attributes.
        assert_eq!(frame_len(&[0x01, 0x01, 0x00, 0x08]), Some(28));
        // A STUN length that is not a multiple of 4 is no STUN.
        assert_eq!(frame_len(&[0x00, 0x01, 0x00, 0x05]), None);
        // ChannelData of 5 bytes, padded to 8.
        assert_eq!(frame_len(&[0x40, 0x00, 0x00, 0x05]), Some(12));
        assert_eq!(frame_len(&[0x7f, 0xff, 0x00, 0x04]), Some(8));
        // An HTTP request reads as a ChannelData message far too long.
        assert!(frame_len(b"GET ").unwrap() > 1500);
        assert_eq!(frame_len(&[0x80, 0, 0, 0]), None);
        assert_eq!(frame_len(&[0x40, 0]), None);
    }
}
