//! Decoding argument tuples, typed or dynamic, naming the parameter that failed.

use std::cell::Cell;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::bad_args;
use crate::codec::typed;
use crate::codec::Fault;
use crate::value::{from_value, Value};

/// A tuple of method arguments (implemented for tuples of up to 16 elements).
///
/// Not meant to be implemented by hand: `#[dopy::remote]` decodes each method's parameters as
/// the tuple of their types.
pub trait ArgList: Sized {
    /// Decodes postcard bytes of the tuple.
    ///
    /// # Errors
    ///
    /// A `BadArguments` fault naming the first parameter that did not decode.
    fn from_typed(bytes: &[u8], params: &[&str], method: &str) -> Result<Self, Box<Fault>>;

    /// Converts one value per parameter (`None` for a missing one).
    ///
    /// # Errors
    ///
    /// A `BadArguments` fault naming the first parameter that is missing or does not fit.
    fn from_values(values: Vec<Option<Value>>, params: &[&str], method: &str) -> Result<Self, Box<Fault>>;
}

fn param<'a>(params: &[&'a str], i: usize) -> &'a str {
    params.get(i).copied().unwrap_or("?")
}

fn typed_one<'de, T: Deserialize<'de>>(
    de: &mut typed::Deserializer<'de>,
    exceeded: &Cell<bool>,
    params: &[&str],
    i: usize,
    method: &str,
) -> Result<T, Box<Fault>> {
    T::deserialize(de).map_err(|e| {
        bad_args(method, format!("argument `{}`: {}", param(params, i), typed::reason(&e, exceeded.get())))
    })
}

fn value_one<T: DeserializeOwned>(
    value: Option<Value>,
    params: &[&str],
    i: usize,
    method: &str,
) -> Result<T, Box<Fault>> {
    match value {
        Some(v) => from_value(v).map_err(|e| bad_args(method, format!("argument `{}`: {e}", param(params, i)))),
        // A missing argument is fine where the parameter accepts "nothing" (an Option).
        None => from_value(Value::Option(None))
            .map_err(|_| bad_args(method, format!("missing argument `{}`", param(params, i)))),
    }
}

fn finish(de: typed::Deserializer<'_>, method: &str) -> Result<(), Box<Fault>> {
    match de.finalize() {
        Ok([]) => Ok(()),
        Ok(rest) => Err(bad_args(method, format!("{} unexpected byte(s) after the last argument", rest.len()))),
        Err(e) => Err(bad_args(method, e)),
    }
}

macro_rules! impl_arg_list {
    ($n:expr; $($t:ident $i:tt),*) => {
        impl<$($t: DeserializeOwned),*> ArgList for ($($t,)*) {
            #[allow(unused_variables, unused_mut, clippy::unused_unit)]
            fn from_typed(bytes: &[u8], params: &[&str], method: &str) -> Result<Self, Box<Fault>> {
                let exceeded = Cell::new(false);
                let mut de = postcard::Deserializer::from_flavor(typed::Guarded::new(bytes, &exceeded));
                let out = ($(typed_one::<$t>(&mut de, &exceeded, params, $i, method)?,)*);
                finish(de, method)?;
                Ok(out)
            }

            #[allow(unused_variables, unused_mut, clippy::unused_unit)]
            fn from_values(values: Vec<Option<Value>>, params: &[&str], method: &str) -> Result<Self, Box<Fault>> {
                if values.len() != $n {
                    return Err(bad_args(method, format!("expected {} argument(s), got {}", $n, values.len())));
                }
                let mut it = values.into_iter();
                Ok(($(value_one::<$t>(it.next().flatten(), params, $i, method)?,)*))
            }
        }
    };
}

impl_arg_list!(0;);
impl_arg_list!(1; A 0);
impl_arg_list!(2; A 0, B 1);
impl_arg_list!(3; A 0, B 1, C 2);
impl_arg_list!(4; A 0, B 1, C 2, D 3);
impl_arg_list!(5; A 0, B 1, C 2, D 3, E 4);
impl_arg_list!(6; A 0, B 1, C 2, D 3, E 4, F 5);
impl_arg_list!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
impl_arg_list!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
impl_arg_list!(9; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
impl_arg_list!(10; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
impl_arg_list!(11; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
impl_arg_list!(12; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
impl_arg_list!(13; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12);
impl_arg_list!(14; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13);
impl_arg_list!(15; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14);
impl_arg_list!(16; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15);
