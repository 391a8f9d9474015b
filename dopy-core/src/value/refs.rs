//! Reference tables: how object references travel inside payloads.
//!
//! A message carries a table of references ([`RefWire`](crate::codec::RefWire)); inside its
//! payload (postcard bytes or a [`Value`]) a reference is the `u32` index of its table entry.
//! serde has no context argument, so the table of the payload being encoded or decoded is kept in
//! a thread-local stack for the duration of the (synchronous) encode or decode call.

use std::cell::RefCell;

use crate::handle::DynObject;
use crate::value::Value;

/// The serde newtype-struct name that marks a reference in any serializer.
pub(crate) const REF_NAME: &str = "$dopy::ObjectRef";

thread_local! {
    static OUT: RefCell<Vec<Vec<DynObject>>> = const { RefCell::new(Vec::new()) };
    static IN: RefCell<Vec<Vec<DynObject>>> = const { RefCell::new(Vec::new()) };
}

/// Runs an encode with `table` as the outgoing reference table; returns the result and the
/// table with every reference the encode added.
pub(crate) fn encoding<R>(table: Vec<DynObject>, f: impl FnOnce() -> R) -> (R, Vec<DynObject>) {
    let out = OutTable::push(table);
    let r = f();
    (r, out.finish())
}

/// The outgoing reference table of an encode in progress on this thread, until
/// [`finish`](OutTable::finish) takes it back (or it drops, during a panic's unwinding).
pub(crate) struct OutTable(());

impl OutTable {
    /// Makes `table` the outgoing table: references encoded meanwhile are added to it.
    pub(crate) fn push(table: Vec<DynObject>) -> OutTable {
        OUT.with(|s| s.borrow_mut().push(table));
        OutTable(())
    }

    /// Ends the encode: the table, with every reference the encode added.
    pub(crate) fn finish(self) -> Vec<DynObject> {
        std::mem::forget(self);
        OUT.with(|s| s.borrow_mut().pop()).unwrap_or_default()
    }
}

impl Drop for OutTable {
    fn drop(&mut self) {
        OUT.with(|s| s.borrow_mut().pop());
    }
}

/// The incoming reference table of a decode in progress on this thread, until it drops.
pub(crate) struct InTable(bool);

impl InTable {
    /// Makes `table` the incoming table: references decoded meanwhile resolve to its entries.
    pub(crate) fn push(table: &[DynObject]) -> InTable {
        // No table to push and none in force: nothing to do (the common typed call).
        if table.is_empty() && IN.with(|s| s.borrow().is_empty()) {
            return InTable(false);
        }
        IN.with(|s| s.borrow_mut().push(table.to_vec()));
        InTable(true)
    }
}

impl Drop for InTable {
    fn drop(&mut self) {
        if self.0 {
            IN.with(|s| s.borrow_mut().pop());
        }
    }
}

/// The index of `obj` in the outgoing table (added if new); `None` outside an encode.
pub(crate) fn out_index(obj: &DynObject) -> Option<u32> {
    OUT.with(|s| {
        let mut s = s.borrow_mut();
        let table = s.last_mut()?;
        let i = match table.iter().position(|o| o.same(obj)) {
            Some(i) => i,
            None => {
                table.push(obj.clone());
                table.len() - 1
            }
        };
        u32::try_from(i).ok()
    })
}

/// Entry `index` of the outgoing table.
pub(crate) fn out_get(index: u32) -> Option<DynObject> {
    OUT.with(|s| s.borrow().last().and_then(|t| t.get(index as usize).cloned()))
}

/// The index a handed-off reference is read as (see [`hand_off`]).
const HANDED_OFF: u32 = u32::MAX;

thread_local! {
    static HANDOFF: RefCell<Option<DynObject>> = const { RefCell::new(None) };
}

/// Gives a reference held in a [`Value`] to a visitor (converting a `Value::Ref` into a proxy,
/// or into a `Value` again): the visitor reads the index [`HANDED_OFF`], which resolves to it.
pub(crate) fn hand_off<'de, V: serde::de::Visitor<'de>>(
    obj: DynObject,
    visitor: V,
) -> Result<V::Value, crate::value::Error> {
    HANDOFF.with(|h| *h.borrow_mut() = Some(obj));
    let r =
        visitor.visit_newtype_struct(serde::de::IntoDeserializer::<crate::value::Error>::into_deserializer(HANDED_OFF));
    HANDOFF.with(|h| h.borrow_mut().take());
    r
}

/// The handed-off reference, if `inner` is the index it is read as.
pub(crate) fn take_handed_off(inner: &Value) -> Option<DynObject> {
    match inner {
        Value::UInt(i) if *i == u64::from(HANDED_OFF) => HANDOFF.with(|h| h.borrow_mut().take()),
        _ => None,
    }
}

/// Entry `index` of the incoming table; `None` outside a decode or out of range.
pub(crate) fn in_get(index: u32) -> Option<DynObject> {
    if index == HANDED_OFF {
        if let Some(obj) = HANDOFF.with(|h| h.borrow_mut().take()) {
            return Some(obj);
        }
    }
    IN.with(|s| s.borrow().last().and_then(|t| t.get(index as usize).cloned()))
}

/// Adds every reference inside `value` to `table` (once each), in encoding order.
pub(crate) fn collect(value: &Value, table: &mut Vec<DynObject>) {
    match value {
        Value::Ref(obj) if !table.iter().any(|o| o.same(obj)) => table.push(obj.clone()),
        Value::Option(Some(v)) | Value::Variant(_, v) => collect(v, table),
        Value::Seq(items) => items.iter().for_each(|v| collect(v, table)),
        Value::Map(entries) => entries.iter().for_each(|(k, v)| {
            collect(k, table);
            collect(v, table);
        }),
        _ => {}
    }
}

/// Replaces the index placeholders a wire decode left in `value` by the table's references.
pub(crate) fn resolve(value: &mut Value, table: &[DynObject]) {
    resolve_with(value, &|i| table.get(i as usize).cloned())
}

/// Replaces the index placeholders a wire decode left in `value` by what `lookup` finds
/// (dangling references where it finds nothing).
pub(crate) fn resolve_with(value: &mut Value, lookup: &dyn Fn(u32) -> Option<DynObject>) {
    match value {
        Value::Ref(obj) => {
            if let Some(i) = obj.unresolved_index() {
                *obj = lookup(i)
                    .unwrap_or_else(|| DynObject::dangling(format!("reference #{i} is not in the message's table")));
            }
        }
        Value::Option(Some(v)) | Value::Variant(_, v) => resolve_with(v, lookup),
        Value::Seq(items) => items.iter_mut().for_each(|v| resolve_with(v, lookup)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            resolve_with(k, lookup);
            resolve_with(v, lookup);
        }),
        _ => {}
    }
}
