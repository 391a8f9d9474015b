//! The per-thread arena that small encodings are written into: [`Room`].
//!
//! A leaf of dopy-core: value encoding and message encoding both write through it.

use std::cell::Cell;

use bytes::{Bytes, BytesMut};

/// Encodings up to this size are written into the thread's arena (see [`Room`]).
pub(crate) const ARENA_MAX: usize = 1024;

/// The size of a new arena chunk.
const ARENA_CHUNK: usize = 16 * 1024;

thread_local! {
    /// The rest of this thread's current arena chunk; `None` while a [`Room`] holds it.
    static ARENA: Cell<Option<BytesMut>> = Cell::new(Some(BytesMut::new()));
}

/// Room for one encoding of a known size, and then its bytes ([`Room::finish`]).
///
/// The small encodings of every call (its arguments, its frame, its result, its reply frame)
/// live only until they are copied into the next one or into the link's write buffer. Rather
/// than one allocation each, those of at most [`ARENA_MAX`] bytes are written into a chunk of
/// [`ARENA_CHUNK`] bytes kept per thread, and split off it: `Bytes` that share the chunk,
/// counted. A chunk is freed when its last encoding is dropped, or reused for the next ones
/// when they all were by the time it is full. Larger encodings (and one made while another
/// holds the chunk, such as by a `Serialize` impl that encodes something itself) get a buffer of
/// their own. A room dropped unfinished (a failed encode) gives the chunk back as it found it.
pub(crate) struct Room {
    buf: BytesMut,
    /// Whether `buf` is the thread's arena chunk, to give back.
    arena: bool,
    #[cfg(debug_assertions)]
    size: usize,
}

impl Room {
    /// Room for exactly `size` bytes.
    #[inline]
    pub(crate) fn new(size: usize) -> Room {
        let chunk = if size <= ARENA_MAX { ARENA.try_with(Cell::take).ok().flatten() } else { None };
        let (buf, arena) = match chunk {
            Some(mut chunk) => {
                if chunk.capacity() < size {
                    chunk.reserve(ARENA_CHUNK);
                }
                (chunk, true)
            }
            None => (BytesMut::with_capacity(size), false),
        };
        Room {
            buf,
            arena,
            #[cfg(debug_assertions)]
            size,
        }
    }

    /// Where the encoding is written.
    #[inline]
    pub(crate) fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The bytes written (exactly the size the room was made for).
    #[inline]
    pub(crate) fn finish(mut self) -> Bytes {
        #[cfg(debug_assertions)]
        debug_assert_eq!(self.buf.len(), self.size, "the size computed beforehand");
        self.buf.split().freeze()
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        if self.arena {
            // What a failed encode wrote is not kept.
            self.buf.clear();
            let chunk = std::mem::take(&mut self.buf);
            let _ = ARENA.try_with(|arena| arena.set(Some(chunk)));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    /// Writes postcard straight into the arena's buffer, as the codec's encoders do.
    struct Into<'a>(&'a mut BytesMut);

    impl postcard::ser_flavors::Flavor for Into<'_> {
        type Output = ();

        fn try_push(&mut self, data: u8) -> postcard::Result<()> {
            self.0.extend_from_slice(&[data]);
            Ok(())
        }

        fn finalize(self) -> postcard::Result<()> {
            Ok(())
        }
    }

    fn to_bytes<T: Serialize>(value: &T) -> Result<Bytes, postcard::Error> {
        let size = postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())?;
        let mut room = Room::new(size);
        postcard::serialize_with_flavor(value, Into(room.buf()))?;
        Ok(room.finish())
    }

    /// Encodings written into the arena, kept alive across chunk boundaries and interleaved
    /// with large ones, failing ones and nested ones, each keep exactly their own bytes.
    #[test]
    fn arena_encodings_keep_their_own_bytes() {
        /// Measured fine, then fails half-way through being written (as a `Serialize` impl
        /// reading shared state may).
        struct Fails(std::cell::Cell<u32>);
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::{Error, SerializeTuple};
                self.0.set(self.0.get() + 1);
                let mut t = s.serialize_tuple(2)?;
                t.serialize_element("written before the failure")?;
                if self.0.get().is_multiple_of(2) {
                    return Err(S::Error::custom("refused"));
                }
                t.serialize_element(&1u8)?;
                t.end()
            }
        }
        /// Encodes something else (into the arena, were it free) while being encoded.
        struct Nested(Vec<u8>);
        impl Serialize for Nested {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let inner = to_bytes(&self.0).map_err(serde::ser::Error::custom)?;
                s.serialize_bytes(&inner)
            }
        }
        let mut kept = Vec::new();
        for i in 0..200usize {
            let value: Vec<u8> = (0..(i * 37) % (ARENA_MAX + 300)).map(|b| (b ^ i) as u8).collect();
            kept.push((to_bytes(&value).unwrap(), postcard::to_allocvec(&value).unwrap()));
            if i % 7 == 0 {
                assert!(to_bytes(&Fails(std::cell::Cell::new(0))).is_err());
            }
            if i % 11 == 0 {
                let nested = Nested(value.clone());
                kept.push((to_bytes(&nested).unwrap(), postcard::to_allocvec(&nested).unwrap()));
            }
            if i % 3 == 0 {
                // Some are dropped early, so that chunks are both reused and replaced.
                kept.remove(kept.len() / 2);
            }
        }
        assert!(kept.len() > 100);
        for (arena, expected) in &kept {
            assert_eq!(&arena[..], &expected[..]);
        }
    }
}
