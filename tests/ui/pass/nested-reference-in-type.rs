//! A `&` inside a type is refused only where it is a value that travels: here it is the
//! parameter of `PhantomData` and of a function pointer type, and the methods compile.

use std::marker::PhantomData;

struct Tagged;

#[dopy::remote]
impl Tagged {
    pub fn tag(&self, tag: PhantomData<&'static str>, n: Option<(u8, Vec<i64>)>) -> PhantomData<fn(&str) -> usize> {
        let _ = (tag, n);
        PhantomData
    }

    pub fn label(&self, _marker: (PhantomData<&'static [u8]>, [u8; 2])) -> String {
        String::new()
    }
}

fn main() {}
