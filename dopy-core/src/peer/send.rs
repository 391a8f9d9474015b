//! Encoding and sending: a message becomes a frame (its references exported, its size
//! checked) and goes to the outbox; the small common ones are written in place.

use super::*;
use crate::codec::session::{DepthLimit, OutTable};

impl Shared {
    /// Encodes a message: exports the references it carries (`refs` for a typed payload, plus
    /// those inside its values) and fills in its reference table. Returns the frame and the
    /// exports made, to undo if the frame is not sent.
    pub(super) fn encode<E>(&self, mut msg: Message, refs: Vec<DynObject>) -> Result<(Encoded, Exported), Error<E>> {
        self.encode_mut(&mut msg, refs)
    }

    /// [`encode`](Shared::encode), leaving the message to the caller (who may still need its
    /// fields, so that they need not be cloned into it).
    pub(super) fn encode_mut<E, M: Outgoing>(
        &self,
        msg: &mut M,
        mut refs: Vec<DynObject>,
    ) -> Result<(Encoded, Exported), Error<E>> {
        if refs.is_empty() && msg.is_typed() {
            // No value to look into for references or nesting (the common call and reply).
            let frame = msg.encode_shared().map_err(|e| Error::Codec(CodecError::from_source(e)))?;
            return self.check_size(frame).map(|f| (f, Exported::default()));
        }
        msg.collect_refs(&mut refs);
        // Values nested deeper than the node's limit are refused here already, with a clear
        // message (postcard's own drops it).
        let max_depth = self.host.max_depth;
        if msg.depth() > max_depth {
            return Err(Error::Codec(CodecError::new(format!("value nesting exceeds {max_depth} levels"))));
        }
        let encoded = |msg: &M| {
            let limit = DepthLimit::set(max_depth);
            match msg.encode_shared() {
                Ok(frame) => Ok(frame),
                Err(_) if limit.exceeded() => {
                    Err(Error::Codec(CodecError::new(format!("value nesting exceeds {max_depth} levels"))))
                }
                Err(e) => Err(Error::Codec(CodecError::from_source(e))),
            }
        };
        if refs.is_empty() {
            // A large typed payload goes to the writer as it is, not copied into the frame.
            let frame = encoded(msg)?;
            return self.check_size(frame).map(|f| (f, Exported::default()));
        }
        let (wire, ids) = match self.export_all(&refs) {
            Ok(done) => done,
            Err(Unsent::Unsendable(reason)) => return Err(Error::Codec(CodecError::new(reason))),
            Err(Unsent::Limit(reason)) => {
                let (object, method) = msg.site().unwrap_or_default();
                let site = CallSite { endpoint: self.endpoint.clone(), object, method };
                return Err(Error::from_fault(Fault::new(FaultKind::Overloaded, reason), site, |_| None));
            }
        };
        msg.set_refs(wire);
        let table = OutTable::push(refs);
        let frame = encoded(msg);
        let held = table.finish();
        let frame = frame.and_then(|f| self.check_size(f));
        match frame {
            Ok(frame) => Ok((frame, Exported { ids, held })),
            Err(e) => {
                self.unexport(&ids);
                Err(e)
            }
        }
    }

    pub(super) fn check_size<E>(&self, frame: Encoded) -> Result<Encoded, Error<E>> {
        if frame.len() > self.host.max_frame {
            return Err(Error::Codec(CodecError::new(format!(
                "message of {} bytes exceeds the maximum frame size of {} bytes",
                frame.len(),
                self.host.max_frame
            ))));
        }
        Ok(frame)
    }

    pub(super) fn send<E>(&self, out: Out) -> Result<(), Error<E>> {
        if self.life.is_ended() {
            return Err(self.disconnected());
        }
        self.out.push(out).map_err(|_| self.disconnected())
    }

    /// [`send`](Shared::send) of a small message of `len` bytes, written in place
    /// ([`Outbox::push_small`]); the caller has checked its size.
    pub(super) fn send_small<E>(&self, msg: &Small<'_>, len: usize) -> Result<(), Error<E>> {
        if self.life.is_ended() {
            return Err(self.disconnected());
        }
        self.out.push_small(msg, len).map_err(|why| match why {
            outbox::Unpushed::Closed => self.disconnected(),
            outbox::Unpushed::Encode(e) => Error::Codec(CodecError::from_source(e)),
        })
    }

    /// [`send_small`](Shared::send_small), for a caller that awaits no other reply on this
    /// connection (a sequential call): the frame is written by the caller itself if the write
    /// path is idle, as the reader writes its replies (see `outbox`), instead of by the writer
    /// task woken for it. Nothing is gained from waiting for other frames to share the write,
    /// and a hand-off to another task (often on another core) is saved.
    pub(super) fn send_small_now<E>(&self, msg: &Small<'_>, len: usize) -> Result<(), Error<E>> {
        let batch = self.out.batch();
        let pushed = self.send_small(msg, len);
        drop(batch);
        if pushed.is_ok() {
            self.out.end_batch();
        }
        pushed
    }

    /// Queues a frame; takes its exports back if the connection has ended. The handles the
    /// frame names are dropped after it is queued, so that a `Release` they cause follows it.
    pub(super) fn send_or_unexport<E>(&self, frame: Encoded, exported: Exported) -> Result<(), Error<E>> {
        let sent = self.send(Out::Frame(frame));
        if sent.is_err() {
            self.unexport(&exported.ids);
        }
        drop(exported.held);
        sent
    }
}

/// A message to encode: a [`Message`], or a call borrowing its parts ([`CallRef`]).
pub(super) trait Outgoing {
    /// Adds the references inside the message's dynamic values to `refs`.
    fn collect_refs(&self, refs: &mut Vec<DynObject>);
    /// Fills in the message's reference table.
    fn set_refs(&mut self, wire: Vec<RefWire>);
    /// The object and method called, for a call.
    fn site(&self) -> Option<(String, String)>;
    /// See [`Message::encode_shared`].
    fn encode_shared(&self) -> Result<Encoded, postcard::Error>;
    /// Whether the message carries typed data only (typed arguments, a typed result): no
    /// [`Value`] that could hold references or be nested too deep.
    fn is_typed(&self) -> bool;
    /// The nesting of a value already in its wire form (a [`Payload::Wire`] result), which
    /// the encoding cannot check; 0 when there is none.
    fn depth(&self) -> usize {
        0
    }
}

pub(super) fn collect_args(args: &Args, refs: &mut Vec<DynObject>) {
    match args {
        Args::Positional(values) => values.iter().for_each(|v| crate::value::refs::collect(v, refs)),
        Args::Named(values) => values.iter().for_each(|(_, v)| crate::value::refs::collect(v, refs)),
        _ => {}
    }
}

impl Outgoing for Message {
    fn depth(&self) -> usize {
        match self {
            Message::Return { outcome: Outcome::Ok(Payload::Wire(wire)), .. } => wire.depth(),
            _ => 0,
        }
    }

    fn collect_refs(&self, refs: &mut Vec<DynObject>) {
        match self {
            Message::Call(call) => collect_args(&call.args, refs),
            Message::Return { outcome: Outcome::Ok(Payload::Dynamic(v)), .. } => crate::value::refs::collect(v, refs),
            _ => {}
        }
    }

    fn set_refs(&mut self, wire: Vec<RefWire>) {
        match self {
            Message::Call(call) => call.refs = wire,
            Message::Return { refs, .. } => *refs = wire,
            _ => {}
        }
    }

    fn site(&self) -> Option<(String, String)> {
        match self {
            Message::Call(call) => Some((call.target.to_string(), call.method.clone())),
            _ => None,
        }
    }

    fn encode_shared(&self) -> Result<Encoded, postcard::Error> {
        Message::encode_shared(self)
    }

    fn is_typed(&self) -> bool {
        match self {
            Message::Call(call) => matches!(call.args, Args::Typed(_) | Args::TypedParts(_)),
            Message::Return { outcome, .. } => {
                matches!(outcome, Outcome::Ok(Payload::Typed(_) | Payload::TypedParts(_)))
            }
            _ => false,
        }
    }
}

impl Outgoing for CallRef<'_> {
    fn collect_refs(&self, refs: &mut Vec<DynObject>) {
        collect_args(self.args, refs)
    }

    fn set_refs(&mut self, wire: Vec<RefWire>) {
        self.refs = wire;
    }

    fn site(&self) -> Option<(String, String)> {
        Some((self.target.to_string(), self.method.to_owned()))
    }

    fn encode_shared(&self) -> Result<Encoded, postcard::Error> {
        CallRef::encode_shared(self)
    }

    fn is_typed(&self) -> bool {
        matches!(self.args, Args::Typed(_) | Args::TypedParts(_))
    }
}
