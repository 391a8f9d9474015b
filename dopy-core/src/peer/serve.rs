//! Serving the peer's calls: routing a received message, resolving the target, refusing what
//! cannot run (unknown object, expired, draining, overloaded), running the call inline or in a
//! task of its own (cancellable, bounded by its deadline), and sending the reply.

use super::*;

impl Shared {
    pub(super) fn reply(self: &Arc<Self>, id: u64, reply: Reply) {
        // The common reply, a small result without references, is written in place. (A wire
        // result nested too deep takes the general path, which refuses it.)
        if let Ok(Answer { payload, refs }) = &reply {
            let too_deep = matches!(payload, Payload::Wire(w) if w.depth() > self.host.max_depth);
            let small =
                if refs.is_empty() && !too_deep { small_return(id, payload, crate::codec::SHARE_MIN) } else { None };
            if let Some((len, msg)) = small.map(|m| (m.len(), m)).filter(|(len, _)| *len <= self.host.max_frame) {
                let _ = self.send_small::<Value>(&msg, len);
                return;
            }
        }
        let (outcome, refs) = match reply {
            Ok(Answer { payload, refs }) => (Outcome::Ok(payload), refs),
            Err(fault) => (Outcome::Err(fault), Vec::new()),
        };
        let result = self.encode::<Value>(Message::Return { id, refs: Vec::new(), outcome }, refs);
        let (frame, exported) = match result {
            Ok(f) => f,
            // The result itself cannot be sent (too large, too many references): tell the
            // caller why instead.
            Err(e) => {
                let kind = if matches!(e, Error::Overloaded(_)) { FaultKind::Overloaded } else { FaultKind::Protocol };
                let fault = Fault::new(kind, format!("the reply could not be sent: {e}"));
                let msg = Message::Return { id, refs: Vec::new(), outcome: Outcome::Err(Box::new(fault)) };
                match self.encode::<Value>(msg, Vec::new()) {
                    Ok(f) => f,
                    Err(_) => return,
                }
            }
        };
        let _ = self.send_or_unexport::<Value>(frame, exported);
    }

    pub(super) fn handle(self: &Arc<Self>, msg: Message, runner: &mut dyn InlineRunner) -> Result<(), DisconnectCause> {
        match msg {
            // The reader decodes calls as `Incoming::Call`.
            Message::Call(Call { id, target, method, refs, args, flags, deadline, chain }) => {
                let target = TargetIn::of(&target);
                let method = method.into();
                self.handle_call(CallIn { id, target, method, refs, args, flags, deadline, chain }, runner)
            }
            Message::Return { id, refs, mut outcome } => {
                // A method's error may be kept (in an `Error`): not a slice of the read buffer.
                if let Outcome::Err(fault) = &mut outcome {
                    if let Some(Payload::Typed(detail)) = &mut fault.detail {
                        crate::codec::unshare(detail);
                    }
                }
                let table = self.import_all(refs);
                if !table.is_empty() {
                    resolve_outcome(&mut outcome, &table);
                }
                if self.deliver(id, Ok((outcome, table))).is_err() {
                    self.late.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(id, "reply to a call nobody waits for (cancelled or late): discarded");
                }
            }
            Message::Ping { nonce } => {
                if let Ok((frame, _)) = self.encode::<Value>(Message::Pong { nonce }, Vec::new()) {
                    let _ = self.send::<Value>(Out::Frame(frame));
                }
            }
            Message::Pong { nonce } => {
                let _ = self.deliver(nonce, Ok((Outcome::Ok(Payload::Dynamic(Value::Unit)), Vec::new())));
            }
            Message::Release { object, count } => {
                let dropped = lock(&self.refs).release(object, count);
                drop(dropped);
            }
            Message::Cancel { id } => {
                if let Some(token) = lock(&self.running).remove(&id) {
                    token.cancel();
                }
            }
            Message::Goodbye => return Err(DisconnectCause::Goodbye),
            Message::Abort { reason } => return Err(DisconnectCause::Aborted { reason }),
        }
        Ok(())
    }

    /// Whether nothing uses the connection: no call in flight either way, no reference held
    /// either way.
    pub(super) fn is_idle(&self) -> bool {
        let waiting = !lock(&self.pending).slots.is_empty();
        let refs = lock(&self.refs);
        !waiting && self.serving.load(Ordering::Acquire) == 0 && refs.exported() == 0 && refs.imported() == 0
    }

    /// Answers a message refused for its values (`why`: nested deeper than [`Host::max_depth`],
    /// or more memory than [`Host::max_expansion`] allows): a call gets `BadArguments`, a reply
    /// fails its call (`Protocol`); the references either carried are released. Only a message
    /// whose start cannot be read ends the connection.
    pub(super) fn refuse_values(self: &Arc<Self>, frame: &[u8], why: &str) -> Result<(), DisconnectCause> {
        /// The variant indexes of `Message::Call` and `Message::Return`.
        const CALL: u32 = 0;
        const RETURN: u32 = 1;
        // A call begins with its id, target, method and references; a reply with its id and
        // references (PROTOCOL.md, section 3).
        match postcard::take_from_bytes::<(u32, u64)>(frame) {
            Ok(((CALL, id), _)) => {
                let Ok(((_, _, target, method, refs), _)) =
                    postcard::take_from_bytes::<(u32, u64, Target, String, Vec<crate::codec::RefWire>)>(frame)
                else {
                    return Err(DisconnectCause::Protocol(ProtocolError::Values { reason: why.to_owned() }));
                };
                drop(self.import_all(refs));
                tracing::debug!(%target, %method, "call refused: {why}");
                let fault = Fault::new(FaultKind::BadArguments, format!("the call was refused: its {why}"));
                self.reply(id, Err(Box::new(self.with_hop(fault, &target.to_string(), &method))));
                Ok(())
            }
            Ok(((RETURN, id), _)) => {
                if let Ok(((_, _, refs), _)) =
                    postcard::take_from_bytes::<(u32, u64, Vec<crate::codec::RefWire>)>(frame)
                {
                    drop(self.import_all(refs));
                }
                let fault = Fault::new(FaultKind::Protocol, format!("the reply was refused: its {why}"));
                let _ = self.deliver(id, Ok((Outcome::Err(Box::new(fault)), Vec::new())));
                Ok(())
            }
            _ => Err(DisconnectCause::Protocol(ProtocolError::Values { reason: why.to_owned() })),
        }
    }

    pub(super) fn resolve_target(&self, target: TargetIn<'_>) -> Option<Arc<Entry>> {
        match target {
            TargetIn::Name(name) => self.host.table.get(name),
            TargetIn::Id(id) => lock(&self.refs).exported_entry(&id),
        }
    }

    /// Serves a call; `runner` runs inline calls.
    pub(super) fn handle_call(self: &Arc<Self>, call: CallIn<'_>, runner: &mut dyn InlineRunner) {
        let CallIn { id, target, method, refs, mut args, flags: call_flags, chain, deadline } = call;
        self.activity.fetch_add(1, Ordering::Relaxed);
        let deadline = deadline.map(|us| Instant::now() + Duration::from_micros(us));
        let oneway = call_flags & flags::ONEWAY != 0;
        let dynamic = call_flags & flags::DYNAMIC_RESULT != 0;
        let table = self.import_all(refs);
        if !table.is_empty() {
            resolve_args(&mut args, &table);
        }
        let Some(entry) = self.resolve_target(target) else {
            tracing::debug!(%target, %method, "call for an unknown object");
            if !oneway {
                let why = match target {
                    TargetIn::Id(_) => "(released, or never exported on this connection)",
                    _ => "",
                };
                let fault = Fault::new(
                    FaultKind::NoSuchObject,
                    format!("no object `{target}` on node `{}` {why}", self.host.name).trim_end().to_owned(),
                );
                self.reply(id, Err(Box::new(self.with_hop(fault, &target.to_string(), &method))));
            }
            return;
        };
        let inline = entry.inline_name(&method);
        if inline.is_none() {
            // Served in a task, where the arguments may wait (for the object's lock, say).
            if let Args::Typed(bytes) = &mut args {
                crate::codec::unshare(bytes);
            }
        }
        let inv = Invocation::new(method, args, dynamic, table);
        // A call whose deadline has passed on arrival (a deadline of 0 included) is not run,
        // whatever the method: nobody waits for its result (PROTOCOL.md, section 3.1).
        if deadline.is_some_and(|d| d <= Instant::now()) {
            if !oneway {
                let fault = expired_on_arrival(inv.method());
                self.reply(id, Err(Box::new(self.with_hop(fault, entry.label(), inv.method()))));
            }
            return;
        }
        if inv.method() == METHODS && !entry.forwards() {
            if !oneway {
                let reply = inv.answer_methods(entry.interface());
                let reply = reply.map_err(|f| Box::new(self.with_hop(*f, entry.label(), METHODS)));
                self.reply(id, reply);
            }
            return;
        }
        if self.host.draining.load(Ordering::Acquire) {
            if !oneway {
                let fault = Fault::new(
                    FaultKind::Cancelled,
                    format!("node `{}` is shutting down; the call was not run", self.host.name),
                );
                self.reply(id, Err(Box::new(self.with_hop(fault, entry.label(), inv.method()))));
            }
            return;
        }
        if self.serving.fetch_add(1, Ordering::AcqRel) >= self.host.max_in_flight {
            self.serving.fetch_sub(1, Ordering::AcqRel);
            if !oneway {
                let fault = Fault::new(
                    FaultKind::Overloaded,
                    format!("{} calls from this peer are already being served", self.host.max_in_flight),
                );
                self.reply(id, Err(Box::new(self.with_hop(fault, entry.label(), inv.method()))));
            }
            return;
        }
        // A serial object takes calls in the order they arrive: take the place in line now.
        let ticket = entry.ticket();
        // Fast path: a method the object marks inline (short, never blocks) runs right here in
        // the reader when it completes without waiting (lock free, no queue): no task, no
        // hand-off, no cancellation token. Anything that would wait gets a task as before.
        let (inv, ticket) = if let Some(method) = inline {
            match runner.run(entry.clone(), inv, ticket, chain, deadline) {
                Ok(reply) => {
                    self.serving.fetch_sub(1, Ordering::AcqRel);
                    if !oneway {
                        let reply = reply.map_err(|f| Box::new(self.with_hop(*f, entry.label(), method)));
                        self.reply(id, reply);
                    }
                    return;
                }
                Err(run) => return self.serve_in_task(id, entry, method, run, oneway, deadline),
            }
        } else {
            (inv, ticket)
        };
        // A `no_cancel` method runs to the end even if its caller gives up.
        let cancellable = !entry.no_cancel(inv.method());
        let method = inv.method().to_owned();
        let object = entry.clone();
        let run = async move { crate::serve::chain::scope(chain, deadline, object.call(inv, ticket)).await };
        self.spawn_served(Served { id, entry, method, cancellable, oneway, deadline }, run);
    }

    /// Serves an inline call that has to wait after all, in a task of its own, as any call.
    pub(super) fn serve_in_task(
        self: &Arc<Self>,
        id: u64,
        entry: Arc<Entry>,
        method: &'static str,
        run: std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>>,
        oneway: bool,
        deadline: Option<Instant>,
    ) {
        let cancellable = !entry.no_cancel(method);
        self.spawn_served(Served { id, entry, method: method.to_owned(), cancellable, oneway, deadline }, run);
    }

    /// Runs a call in a task of its own: stopped when the caller cancels it (unless the method
    /// is `no_cancel`), when the connection ends, or when its deadline passes; then replies.
    /// The one path of every call served in a task.
    fn spawn_served<F>(self: &Arc<Self>, call: Served, run: F)
    where
        F: Future<Output = Reply> + Send + 'static,
    {
        let Served { id, entry, method, cancellable, oneway, deadline } = call;
        let stop = CancellationToken::new();
        if cancellable {
            lock(&self.running).insert(id, stop.clone());
            // Ended meanwhile: `finish` has already stopped the calls it found.
            if self.life.is_ended() {
                stop.cancel();
            }
        }
        let shared = self.clone();
        let span = tracing::debug_span!("dopy.serve", object = entry.label(), method = method.as_str(), id);
        spawn_in(
            async move {
                let started = Instant::now();
                let reply = if cancellable {
                    let expired = async {
                        match deadline {
                            Some(d) => tokio::time::sleep_until(d.into()).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        reply = run => Some(reply),
                        _ = stop.cancelled() => None,
                        _ = expired => Some(Err(Box::new(Fault::new(
                            FaultKind::DeadlineExceeded,
                            format!("the deadline passed while `{method}` was running; it was stopped"),
                        )))),
                    }
                } else {
                    Some(run.await)
                };
                lock(&shared.running).remove(&id);
                shared.serving.fetch_sub(1, Ordering::AcqRel);
                let Some(reply) = reply else {
                    tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, "call cancelled by the caller");
                    return;
                };
                let ok = reply.is_ok();
                tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, ok, "call served");
                if !oneway {
                    let reply = reply.map_err(|f| Box::new(shared.with_hop(*f, entry.label(), &method)));
                    shared.reply(id, reply);
                }
            },
            span,
        );
    }

    pub(super) fn with_hop(&self, mut fault: Fault, object: &str, method: &str) -> Fault {
        // A panic of this node's own (no hop yet): its backtrace goes out only if this node
        // opted in (another node of the process may have turned the capture on).
        if fault.hops.is_empty() && !self.host.panic_backtraces {
            fault.backtrace = None;
        }
        fault.hops.push(Hop { node: self.host.name.clone(), object: object.to_owned(), method: method.to_owned() });
        fault
    }
}

/// The fault for a call whose deadline had passed before it could start: the method was not run.
pub(crate) fn expired_on_arrival(method: &str) -> Fault {
    Fault::new(
        FaultKind::DeadlineExceeded,
        format!("the deadline had passed before `{method}` could start; it was not run"),
    )
}

pub(super) fn resolve_args(args: &mut Args, table: &[DynObject]) {
    match args {
        Args::Positional(values) => values.iter_mut().for_each(|v| crate::value::refs::resolve(v, table)),
        Args::Named(values) => values.iter_mut().for_each(|(_, v)| crate::value::refs::resolve(v, table)),
        _ => {}
    }
}

pub(super) fn resolve_outcome(outcome: &mut Outcome, table: &[DynObject]) {
    match outcome {
        Outcome::Ok(Payload::Dynamic(v)) => crate::value::refs::resolve(v, table),
        Outcome::Err(fault) => {
            if let Some(Payload::Dynamic(v)) = &mut fault.detail {
                crate::value::refs::resolve(v, table)
            }
        }
        _ => {}
    }
}

/// A call about to be served in a task: what [`Shared::spawn_served`] needs besides its future.
struct Served {
    id: u64,
    entry: Arc<Entry>,
    method: String,
    /// Whether the caller's `Cancel` (or the end of the connection) stops it: not for a
    /// `no_cancel` method.
    cancellable: bool,
    oneway: bool,
    deadline: Option<Instant>,
}
