//! [`Link`]: a framed duplex over any byte stream, after the handshake.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::Sink;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::FramedRead;

use crate::handshake::{self, HandshakeError, Role, Secret};
use crate::{frame, TransportError};

/// The read half of a byte stream, boxed so every transport yields the same type.
pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a byte stream, boxed so every transport yields the same type.
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// Incoming frames: a `Stream` of `Result<BytesMut, io::Error>`.
pub type FrameReader = FramedRead<BoxRead, frame::FrameCodec>;

/// Outgoing frames: a `Sink<Bytes>`; `feed` several frames and `flush` once to batch writes.
///
/// Each frame gets its length prefix (the layout of [`frame`]). Small frames are copied into
/// one buffer, so that a batch of them goes out in one write. A frame of at least
/// [`FrameWriter::COPY_LIMIT`] bytes is not copied: it is queued as it is, behind its prefix,
/// and written with vectored writes (where the stream supports them), so that bulk data is not
/// copied once more on its way to the socket.
pub struct FrameWriter {
    io: BoxWrite,
    max_frame: usize,
    /// Data waiting to be written, in order, before `buf`: small frames gathered so far, then a
    /// large frame as it is.
    chunks: VecDeque<Bytes>,
    /// Small frames (and prefixes) gathered after the last chunk.
    buf: BytesMut,
    /// Bytes queued in `chunks` and `buf`, for backpressure.
    queued: usize,
}

impl fmt::Debug for FrameWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameWriter").field("max_frame", &self.max_frame).field("queued", &self.queued).finish()
    }
}

impl FrameWriter {
    /// Frames at least this large are written from their own buffer instead of being copied.
    pub const COPY_LIMIT: usize = 16 * 1024;

    /// `feed` writes out what is queued once this much is waiting.
    const BACKPRESSURE: usize = 64 * 1024;

    /// Slices handed to one vectored write.
    const MAX_SLICES: usize = 64;

    /// Frames `io` with the protocol's layout, refusing frames above `max_frame` bytes.
    pub fn new(io: BoxWrite, max_frame: usize) -> Self {
        FrameWriter { io, max_frame, chunks: VecDeque::new(), buf: BytesMut::new(), queued: 0 }
    }

    /// Queues the length prefix of a frame of `len` bytes, or refuses it.
    fn start_frame(&mut self, len: usize) -> io::Result<()> {
        if len > self.max_frame {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("frame of {len} bytes exceeds the maximum of {} bytes", self.max_frame),
            ));
        }
        let prefix = u32::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        frame::put_header(&mut self.buf, prefix);
        self.queued += frame::HEADER_LEN;
        Ok(())
    }

    /// Queues payload bytes: copied when small, kept as they are when large.
    fn push(&mut self, data: Bytes) {
        self.queued += data.len();
        if data.len() >= Self::COPY_LIMIT {
            if !self.buf.is_empty() {
                self.chunks.push_back(self.buf.split().freeze());
            }
            self.chunks.push_back(data);
        } else {
            self.buf.extend_from_slice(&data);
        }
    }

    /// Queues every frame of `batch`, in order, as many `start_send`s of their payloads would:
    /// the batch's bytes are copied into the write buffer at once, and the caller keeps `batch`
    /// to [`clear`](frame::FrameBatch::clear) and reuse it.
    ///
    /// Call it after `poll_ready`, as `start_send`. The sender has checked each frame of the
    /// batch against the maximum itself.
    pub fn start_send_batch(&mut self, batch: &frame::FrameBatch) {
        let frames = batch.as_bytes();
        self.queued += frames.len();
        self.buf.extend_from_slice(frames);
    }

    /// Writes out everything queued (without flushing the stream itself).
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let FrameWriter { io, chunks, buf, queued, .. } = self;
        while *queued > 0 {
            let n = if chunks.is_empty() {
                // Small frames only (the common case): one contiguous write.
                ready!(Pin::new(&mut *io).poll_write(cx, &buf[..]))?
            } else if io.is_write_vectored() {
                let mut slices = [IoSlice::new(&[]); Self::MAX_SLICES];
                let mut count = 0;
                for chunk in chunks.iter().map(|c| &c[..]).chain(std::iter::once(&buf[..])) {
                    if count == Self::MAX_SLICES {
                        break;
                    }
                    if !chunk.is_empty() {
                        slices[count] = IoSlice::new(chunk);
                        count += 1;
                    }
                }
                ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count]))?
            } else {
                let first = chunks.front().map_or(&buf[..], |c| &c[..]);
                ready!(Pin::new(&mut *io).poll_write(cx, first))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *queued -= n;
            let mut left = n;
            while left > 0 {
                match chunks.front_mut() {
                    Some(chunk) if chunk.len() <= left => {
                        left -= chunk.len();
                        chunks.pop_front();
                    }
                    Some(chunk) => {
                        chunk.advance(left);
                        left = 0;
                    }
                    None => {
                        buf.advance(left);
                        left = 0;
                    }
                }
            }
        }
        buf.clear();
        Poll::Ready(Ok(()))
    }
}

/// A frame given in parts (a payload encoded around a large buffer that should not be copied):
/// the frame's payload is the parts one after the other. Parts of at least
/// [`FrameWriter::COPY_LIMIT`] bytes are written from their own buffers.
impl Sink<Vec<Bytes>> for FrameWriter {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Sink::<Bytes>::poll_ready(self, cx)
    }

    fn start_send(self: Pin<&mut Self>, parts: Vec<Bytes>) -> io::Result<()> {
        let this = self.get_mut();
        let len: usize = parts.iter().map(Bytes::len).sum();
        this.start_frame(len)?;
        for part in parts {
            this.push(part);
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Sink::<Bytes>::poll_flush(self, cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Sink::<Bytes>::poll_close(self, cx)
    }
}

impl Sink<Bytes> for FrameWriter {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.queued >= Self::BACKPRESSURE {
            ready!(this.poll_write_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, frame: Bytes) -> io::Result<()> {
        let this = self.get_mut();
        this.start_frame(frame.len())?;
        this.push(frame);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Sink::<Bytes>::poll_flush(self.as_mut(), cx))?;
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// What is known about the two ends of a link, for logs and error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// The transport scheme (`tcp`, `unix`, `memory`, ...).
    pub transport: &'static str,
    /// The local end, as the transport names it.
    pub local: String,
    /// The remote end, as the transport names it.
    pub peer: String,
}

impl fmt::Display for LinkInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} <-> {}", self.transport, self.local, self.peer)
    }
}

/// Something a transport keeps alive with its stream, and asks about when the stream ends.
///
/// A child-process transport attaches the child: dropping the attachment (when the last handle
/// to the connection goes) ends the child, and [`on_close`](Attachment::on_close) reports its
/// exit status and the end of its stderr for the `Disconnected` error.
pub trait Attachment: Send + Sync + 'static {
    /// Extra words about why the stream ended (for instance `child exited with status 1;
    /// stderr: ...`), or `None`. May wait a little for the transport to settle (a child to exit).
    fn on_close(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send + '_>>;

    /// What the transport knows right now, without waiting (a child's stderr so far), or `None`.
    ///
    /// Used when the stream has not ended but the connection fails anyway (a banner instead of
    /// the handshake, a handshake timeout).
    fn describe(&self) -> Option<String> {
        None
    }
}

/// A connected byte stream before the handshake, split into halves.
pub struct RawStream {
    /// Where bytes come from.
    pub reader: BoxRead,
    /// Where bytes go.
    pub writer: BoxWrite,
    /// The two ends.
    pub info: LinkInfo,
    /// What the transport keeps alive with the stream (a child process, for instance).
    pub attachment: Option<Box<dyn Attachment>>,
    /// Whether this side opened or accepted the stream.
    pub role: Role,
}

impl RawStream {
    /// A stream with nothing attached.
    pub fn new(reader: BoxRead, writer: BoxWrite, info: LinkInfo, role: Role) -> Self {
        RawStream { reader, writer, info, attachment: None, role }
    }

    /// Attaches what must live as long as the stream (a child process, for instance).
    pub fn with_attachment(mut self, attachment: Box<dyn Attachment>) -> Self {
        self.attachment = Some(attachment);
        self
    }
}

impl fmt::Debug for RawStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawStream").field("info", &self.info).field("role", &self.role).finish_non_exhaustive()
    }
}

/// Settings of a link: frame limit, handshake timeout and authentication.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// Largest frame payload accepted or sent, in bytes.
    pub max_frame: usize,
    /// How long the peer may take to complete the handshake.
    pub handshake_timeout: Duration,
    /// The shared secret both ends must prove they know, or `None` for no authentication.
    ///
    /// With a secret, this side accepts only peers that prove knowledge of the same secret, and
    /// proves its own knowledge in turn (mutual challenge–response, see [`handshake`]).
    pub secret: Option<Secret>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig { max_frame: frame::DEFAULT_MAX_FRAME, handshake_timeout: Duration::from_secs(10), secret: None }
    }
}

/// A framed duplex ready to carry protocol messages.
pub struct Link {
    reader: FrameReader,
    writer: FrameWriter,
    info: LinkInfo,
    attachment: Option<Box<dyn Attachment>>,
}

/// The parts of a [`Link`], for the code that drives it.
pub struct LinkParts {
    /// Incoming frames.
    pub reader: FrameReader,
    /// Outgoing frames.
    pub writer: FrameWriter,
    /// The two ends.
    pub info: LinkInfo,
    /// What the transport keeps alive with the stream; drop it when the connection is done.
    pub attachment: Option<Box<dyn Attachment>>,
}

impl fmt::Debug for LinkParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkParts").field("info", &self.info).finish_non_exhaustive()
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link").field("info", &self.info).finish_non_exhaustive()
    }
}

impl Link {
    /// Runs the handshake on a fresh stream and frames it.
    ///
    /// # Errors
    ///
    /// [`TransportError::Handshake`] when the other end is not a dopy peer of this version, does
    /// not answer within the configured timeout, or fails authentication
    /// ([`TransportError::is_unauthorized`]); [`TransportError::Closed`] when the transport
    /// knows more (a child process exited: its status and the end of its stderr).
    pub async fn establish(mut raw: RawStream, config: &LinkConfig) -> Result<Link, TransportError> {
        let outcome = handshake::run(
            &mut raw.reader,
            &mut raw.writer,
            raw.role,
            config.secret.as_ref(),
            config.handshake_timeout,
        )
        .await;
        if let Err(e) = outcome {
            tracing::debug!(link = %raw.info, error = %e, "handshake failed");
            let detail = match &raw.attachment {
                // The stream ended: a child that died before answering explains why better
                // than the handshake can, so wait for its exit status.
                Some(a) if matches!(e, HandshakeError::Closed { .. } | HandshakeError::Io(_)) => a.on_close().await,
                // The peer is still there (a banner, silence): say what it printed so far.
                Some(a) => a.describe(),
                None => None,
            };
            return Err(match detail {
                Some(detail) => TransportError::Closed { error: e, detail },
                None => e.into(),
            });
        }
        tracing::debug!(link = %raw.info, "handshake complete");
        Ok(Link {
            reader: FramedRead::with_capacity(raw.reader, frame::codec(config.max_frame), 64 * 1024),
            writer: FrameWriter::new(raw.writer, config.max_frame),
            info: raw.info,
            attachment: raw.attachment,
        })
    }

    /// The two ends of the link.
    pub fn info(&self) -> &LinkInfo {
        &self.info
    }

    /// Splits the link into its reading and writing halves (dropping any attachment).
    pub fn split(self) -> (FrameReader, FrameWriter) {
        (self.reader, self.writer)
    }

    /// Takes the link apart, keeping the attachment.
    pub fn into_parts(self) -> LinkParts {
        LinkParts { reader: self.reader, writer: self.writer, info: self.info, attachment: self.attachment }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};

    /// What a writer's frames read back as, through a pipe, with the protocol's reader.
    async fn round_trip(frames: &[Bytes], max: usize) -> Vec<Bytes> {
        let (a, b) = tokio::io::duplex(1024);
        let mut writer = FrameWriter::new(Box::new(a), max);
        let mut reader = FramedRead::new(b, frame::codec(max));
        let sent = frames.to_vec();
        let write = tokio::spawn(async move {
            for f in sent {
                writer.feed(f).await.unwrap();
            }
            SinkExt::<Bytes>::close(&mut writer).await.unwrap();
        });
        let mut got = Vec::new();
        while let Some(frame) = reader.next().await {
            got.push(frame.unwrap().freeze());
        }
        write.await.unwrap();
        got
    }

    /// Small and large frames, in any mix, arrive whole and in order with the documented layout.
    #[tokio::test]
    async fn small_and_large_frames_arrive_in_order() {
        let sizes = [0, 1, 5, FrameWriter::COPY_LIMIT - 1, FrameWriter::COPY_LIMIT, 3, 200_000, 7, 70_000, 70_000, 2];
        let frames: Vec<Bytes> = sizes.iter().enumerate().map(|(i, &n)| Bytes::from(vec![i as u8; n])).collect();
        assert_eq!(round_trip(&frames, 1 << 20).await, frames);
    }

    /// Over TCP (vectored writes), large frames go out uncopied, whole and in order.
    #[tokio::test]
    async fn vectored_writes_over_tcp_keep_frames_whole_and_in_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sizes = [10, 300_000, 4, 20_000, 20_000, 9, 1_000_000, 0, 17];
        let frames: Vec<Bytes> = sizes.iter().enumerate().map(|(i, &n)| Bytes::from(vec![i as u8; n])).collect();
        let sent = frames.clone();
        let write = tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (_, w) = stream.into_split();
            assert!(w.is_write_vectored());
            let mut writer = FrameWriter::new(Box::new(w), 1 << 20);
            for f in sent {
                writer.feed(f).await.unwrap();
            }
            SinkExt::<Bytes>::close(&mut writer).await.unwrap();
        });
        let (stream, _) = listener.accept().await.unwrap();
        let mut reader = FramedRead::new(stream, frame::codec(1 << 20));
        let mut got = Vec::new();
        while let Some(frame) = reader.next().await {
            got.push(frame.unwrap().freeze());
        }
        write.await.unwrap();
        assert_eq!(got, frames);
    }

    /// A frame given in parts arrives as one frame, its parts one after the other.
    #[tokio::test]
    async fn frame_in_parts_arrives_as_one_frame() {
        let (a, b) = tokio::io::duplex(1024);
        let mut writer = FrameWriter::new(Box::new(a), 1 << 20);
        let mut reader = FramedRead::new(b, frame::codec(1 << 20));
        let parts = vec![Bytes::from_static(b"head"), Bytes::from(vec![9u8; 50_000]), Bytes::from_static(b"tail")];
        let whole = parts.concat();
        let write = tokio::spawn(async move {
            writer.send(parts).await.unwrap();
            writer.send(Bytes::from_static(b"next")).await.unwrap();
            SinkExt::<Bytes>::close(&mut writer).await.unwrap();
        });
        assert_eq!(&reader.next().await.unwrap().unwrap()[..], &whole[..]);
        assert_eq!(&reader.next().await.unwrap().unwrap()[..], b"next");
        write.await.unwrap();
    }

    /// A batch's frames read back as the frames whose payloads were written into it, in their
    /// place among frames sent one by one, the same bytes as `start_send` writes; a cleared
    /// batch is reused.
    #[tokio::test]
    async fn batched_frames_arrive_among_the_others() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut writer = FrameWriter::new(Box::new(a), 1 << 20);
        let mut reader = FramedRead::new(b, frame::codec(1 << 20));
        let mut batch = frame::FrameBatch::default();
        let payload = |i: u8| vec![i; usize::from(i) * 3];
        let mut expected = Vec::new();
        for round in 0..3u8 {
            for i in 0..4 {
                let p = payload(round * 10 + i);
                batch
                    .push_with(|out| {
                        out.extend_from_slice(&p);
                        Ok::<_, io::Error>(())
                    })
                    .unwrap();
                expected.push(p);
            }
            std::future::poll_fn(|cx| Sink::<Bytes>::poll_ready(Pin::new(&mut writer), cx)).await.unwrap();
            writer.start_send_batch(&batch);
            batch.clear();
            let single = payload(round * 10 + 9);
            writer.feed(Bytes::from(single.clone())).await.unwrap();
            expected.push(single);
        }
        SinkExt::<Bytes>::close(&mut writer).await.unwrap();
        let mut got = Vec::new();
        while let Some(frame) = reader.next().await {
            got.push(frame.unwrap().to_vec());
        }
        assert_eq!(got, expected);
    }

    /// The layout is the protocol's: a 4-byte little-endian length, then the payload.
    #[tokio::test]
    async fn layout_is_length_then_payload() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut writer = FrameWriter::new(Box::new(a), 16);
        writer.send(Bytes::from_static(b"abc")).await.unwrap();
        let mut got = [0u8; 7];
        tokio::io::AsyncReadExt::read_exact(&mut b, &mut got).await.unwrap();
        assert_eq!(got, [3, 0, 0, 0, b'a', b'b', b'c']);
    }

    /// A frame above the maximum is refused and nothing of it is written; the writer stays usable.
    #[tokio::test]
    async fn frame_above_the_maximum_is_refused() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut writer = FrameWriter::new(Box::new(a), 4);
        let err = writer.send(Bytes::from_static(b"12345")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        writer.send(Bytes::from_static(b"1234")).await.unwrap();
        let mut got = [0u8; 8];
        tokio::io::AsyncReadExt::read_exact(&mut b, &mut got).await.unwrap();
        assert_eq!(got, [4, 0, 0, 0, b'1', b'2', b'3', b'4']);
    }
}
