//! Postcard's varints, written straight into a buffer by the hand-written encoders.

use bytes::BufMut;

/// Appends `v` as a postcard varint: seven bits per byte, least significant first, the high
/// bit set on every byte but the last (the canonical form, which postcard writes).
#[inline(always)]
pub(crate) fn push_varint(buf: &mut impl BufMut, mut v: u128) {
    if let Ok(v) = u64::try_from(v) {
        return push_varint64(buf, v);
    }
    while v >= 0x80 {
        buf.put_u8(v as u8 | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// [`push_varint`] of a `u64`, gathered on the stack and appended at once.
#[inline(always)]
pub(crate) fn push_varint64(buf: &mut impl BufMut, mut v: u64) {
    if v < 0x80 {
        buf.put_u8(v as u8);
        return;
    }
    let mut bytes = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        bytes[n] = v as u8 | 0x80;
        v >>= 7;
        n += 1;
    }
    bytes[n] = v as u8;
    buf.put_slice(&bytes[..=n]);
}

/// The size of `n` as a varint.
#[inline]
pub(crate) fn varint_len(n: u64) -> usize {
    (u64::BITS - (n | 1).leading_zeros()).div_ceil(7) as usize
}
