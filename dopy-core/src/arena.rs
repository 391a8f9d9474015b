//! The per-thread arena that small encodings are written into: [`encode_sized`].
//!
//! A leaf of dopy-core: value encoding and message encoding both write through it.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};

/// Encodings up to this size are written into the thread's arena (see [`encode_sized`]).
pub(crate) const ARENA_MAX: usize = 1024;

/// The size of a new arena chunk.
const ARENA_CHUNK: usize = 16 * 1024;

thread_local! {
    /// The rest of this thread's current arena chunk (see [`encode_sized`]).
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Runs `write`, which writes exactly `size` bytes, and returns those bytes.
///
/// The small encodings of every call (its arguments, its frame, its result, its reply frame)
/// live only until they are copied into the next one or into the link's write buffer. Rather
/// than one allocation each, those of at most [`ARENA_MAX`] bytes are written into a chunk of
/// [`ARENA_CHUNK`] bytes kept per thread, and split off it: `Bytes` that share the chunk,
/// counted. A chunk is freed when its last encoding is dropped, or reused for the next ones
/// when they all were by the time it is full. Larger encodings (and a nested call, such as a
/// `Serialize` impl that encodes something itself) get an allocation of their own.
#[inline]
pub(crate) fn encode_sized<E>(size: usize, write: impl FnOnce(&mut BytesMut) -> Result<(), E>) -> Result<Bytes, E> {
    let mut write = Some(write);
    if size <= ARENA_MAX {
        let in_arena = ARENA.try_with(|arena| {
            let mut arena = arena.try_borrow_mut().ok()?;
            let write = write.take()?;
            if arena.capacity() < size {
                arena.reserve(ARENA_CHUNK);
            }
            Some(match write(&mut arena) {
                Ok(()) => {
                    debug_assert_eq!(arena.len(), size, "the size computed beforehand");
                    Ok(arena.split().freeze())
                }
                Err(e) => {
                    arena.clear();
                    Err(e)
                }
            })
        });
        if let Ok(Some(done)) = in_arena {
            return done;
        }
    }
    let mut out = BytesMut::with_capacity(size);
    if let Some(write) = write {
        write(&mut out)?;
    }
    debug_assert_eq!(out.len(), size, "the size computed beforehand");
    Ok(out.freeze())
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
        encode_sized(size, |out| postcard::serialize_with_flavor(value, Into(out)))
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
