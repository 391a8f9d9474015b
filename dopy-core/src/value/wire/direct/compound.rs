//! The elements of sequences and maps that [`to_wire`](super::to_wire) writes, with the
//! length before them corrected when the one announced was wrong or missing.

use serde::ser::{self, Serialize};

use super::{At, Out};
use crate::value::wire::tag::Tag;
use crate::value::wire::varint::varint_len;
use crate::value::Error;

/// The elements of a sequence or the entries of a map, at level `depth`, counted so that the
/// length written before them can be corrected when the announced one (a hint) was wrong or
/// missing.
pub(super) struct Compound<'a> {
    pub(super) out: &'a mut Out,
    pub(super) depth: usize,
    /// Where the length is (or goes).
    pub(super) len_at: usize,
    pub(super) announced: Option<usize>,
    pub(super) count: usize,
    /// A map key was written, its value not yet.
    pub(super) key_pending: bool,
}

impl Compound<'_> {
    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(At { out: self.out, depth: self.depth })?;
        self.count += 1;
        Ok(())
    }

    // Always inlined (with `serialize_field`) into the struct's `Serialize`: its field names are
    // constants there, and their copies a few moves instead of a call of `memcpy` each.
    #[inline(always)]
    fn field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.out.start(Tag::String, self.depth)?;
        self.out.str(key);
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        if self.key_pending {
            return Err(Error::new("map key serialized without its value"));
        }
        if self.announced == Some(self.count) {
            return Ok(());
        }
        // The hint was wrong or missing: put the true length in place.
        let written = match self.announced {
            Some(n) => varint_len(n as u64),
            None => 0,
        };
        let mut len = Out { buf: Vec::with_capacity(10), deepest: 0 };
        len.varint(self.count as u128);
        self.out.buf.splice(self.len_at..self.len_at + written, len.buf);
        Ok(())
    }
}

/// The serde traits of sequences, tuples and tuple structs and variants: every element is a
/// wire value of the compound.
macro_rules! elements {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Error;

            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }

            fn end(self) -> Result<(), Error> {
                Compound::end(self)
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// The serde traits of structs and struct variants: a map with the field names as keys.
macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Error;

            #[inline(always)]
            fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
                self.field(key, value)
            }

            fn end(self) -> Result<(), Error> {
                Compound::end(self)
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        if self.key_pending {
            return Err(Error::new("map key serialized without its value"));
        }
        key.serialize(At { out: self.out, depth: self.depth })?;
        self.key_pending = true;
        Ok(())
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        if !self.key_pending {
            return Err(Error::new("map value serialized before its key"));
        }
        self.key_pending = false;
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        Compound::end(self)
    }
}
