//! Inline calls: a method marked inline runs in the reader itself when it completes without
//! waiting; one that has to wait after all moves to a task.

use super::*;

/// Runs inline calls for a reader (see [`Shared::handle_call`]).
pub(super) trait InlineRunner {
    /// Starts an inline call: its reply if it completed at once, else the call, to finish in a
    /// task.
    fn run(
        &mut self,
        entry: Arc<Entry>,
        inv: Invocation,
        ticket: Option<Ticket>,
        chain: u64,
        deadline: Option<Instant>,
    ) -> Result<Reply, Pin<Box<dyn Future<Output = Reply> + Send>>>;
}

/// The future of an inline call, without its chain scope: [`InlineBox`] and [`Started`] poll
/// and drop it in [`chain::sync_scope`](crate::serve::chain::sync_scope).
pub(super) fn inline_call(
    entry: Arc<Entry>,
    inv: Invocation,
    ticket: Option<Ticket>,
) -> impl Future<Output = Reply> + Send + 'static {
    entry.call_owned(inv, ticket)
}

/// A reader's [`InlineRunner`]: one box for its inline calls' futures (made by `make`), reused
/// from one call to the next, so that an inline call that completes at once (the usual case)
/// allocates nothing for its future. One that has to wait takes the box to its task; the next
/// call gets a fresh one.
///
/// The first poll runs in the call's chain scope set for that poll alone
/// ([`chain::sync_scope`](crate::serve::chain::sync_scope)), and a completed call is dropped in it
/// too; a call that has to wait goes on as [`Started`], which does the same for the polls and
/// the drop still to come. Every poll and the drop thus see the scope, as if the future had
/// been wrapped in [`chain::scope`](crate::serve::chain::scope) from the start, without moving it into
/// a scoped future per call.
pub(super) struct InlineBox<F, Fut> {
    pub(super) make: F,
    pub(super) spare: Option<Pin<Box<Option<Fut>>>>,
}

impl<F, Fut> InlineRunner for InlineBox<F, Fut>
where
    F: Fn(Arc<Entry>, Invocation, Option<Ticket>) -> Fut,
    Fut: Future<Output = Reply> + Send + 'static,
{
    fn run(
        &mut self,
        entry: Arc<Entry>,
        inv: Invocation,
        ticket: Option<Ticket>,
        chain: u64,
        deadline: Option<Instant>,
    ) -> Result<Reply, Pin<Box<dyn Future<Output = Reply> + Send>>> {
        let mut call = self.spare.take().unwrap_or_else(|| Box::pin(None));
        call.set(Some((self.make)(entry, inv, ticket)));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match crate::serve::chain::poll_in_scope(chain, deadline, call.as_mut(), &mut cx) {
            std::task::Poll::Ready(reply) => {
                self.spare = Some(call);
                Ok(reply)
            }
            std::task::Poll::Pending => Err(Box::pin(Started { call, chain, deadline })),
        }
    }
}

/// An inline call that has to wait, in the box it started in, with its chain scope: polled
/// and dropped (completed or cancelled) in it, as its first poll was.
pub(super) struct Started<Fut> {
    /// The call, `None` once completed (it was dropped in its scope then).
    pub(super) call: Pin<Box<Option<Fut>>>,
    /// Its chain and deadline, set around each poll and the drop.
    pub(super) chain: u64,
    pub(super) deadline: Option<Instant>,
}

impl<Fut: Future> Future for Started<Fut> {
    type Output = Fut::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Fut::Output> {
        let Started { call, chain, deadline } = self.get_mut();
        crate::serve::chain::poll_in_scope(*chain, *deadline, call.as_mut(), cx)
    }
}

impl<Fut> Drop for Started<Fut> {
    fn drop(&mut self) {
        if self.call.is_some() {
            let call = &mut self.call;
            crate::serve::chain::sync_scope(self.chain, self.deadline, || call.set(None));
        }
    }
}
