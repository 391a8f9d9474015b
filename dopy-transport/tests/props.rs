//! Property tests of the frame decoder (proptest; see `docs/FUZZING.md`): any byte stream, cut
//! into reads of any sizes, gives exactly the frames the protocol defines, then the end, "too
//! large" or "truncated"; never a panic, never a frame above the limit, and never an allocation
//! beyond what the input and the frame limit account for (measured with a peak-tracking
//! global allocator, in this test binary only).

use std::alloc::System;
use std::sync::{Mutex, MutexGuard};

use bytes::BytesMut;
use dopy_transport::frame::{self, FrameError};
use peakmem_alloc::{PeakMemAlloc, PeakMemAllocTrait, INSTRUMENTED_SYSTEM};
use proptest::collection::vec;
use proptest::prelude::*;
use tokio_util::codec::Decoder;

#[global_allocator]
static GLOBAL: &PeakMemAlloc<System> = &INSTRUMENTED_SYSTEM;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The allocation counters are global: the tests of this file run one at a time.
fn measuring() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The most memory in use while `f` runs, above what was in use before: the peak of bytes
/// allocated minus bytes freed (reallocations count their difference).
fn allocated_by<R>(f: impl FnOnce() -> R) -> (R, usize) {
    GLOBAL.reset_peak_memory();
    let r = f();
    (r, GLOBAL.get_peak_memory())
}

/// `cases` per property, unless `PROPTEST_CASES` asks for another number.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// How a stream ends.
#[derive(Debug, PartialEq)]
enum End {
    Clean,
    TooLarge,
    Truncated,
}

/// The frames of `data` by the protocol's definition (PROTOCOL.md, section 1.3).
fn model(mut data: &[u8], max: usize) -> (Vec<Vec<u8>>, End) {
    let mut frames = Vec::new();
    loop {
        if data.is_empty() {
            return (frames, End::Clean);
        }
        if data.len() < frame::HEADER_LEN {
            return (frames, End::Truncated);
        }
        let len = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
        if len > max {
            return (frames, End::TooLarge);
        }
        if data.len() < 4 + len {
            return (frames, End::Truncated);
        }
        frames.push(data[4..4 + len].to_vec());
        data = &data[4 + len..];
    }
}

/// Feeds `data` to the codec in reads of `sizes` (cycled), as `FramedRead` does: decode after
/// each read, `decode_eof` at the end, stop at the first error.
fn run_decoder(data: &[u8], sizes: &[usize], max: usize) -> (Vec<Vec<u8>>, Option<FrameError>) {
    let mut codec = frame::codec(max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut pos = 0;
    let mut turn = 0;
    loop {
        let eof = pos == data.len();
        let step = if eof { codec.decode_eof(&mut buf) } else { codec.decode(&mut buf) };
        match step {
            Ok(Some(frame)) => frames.push(frame.to_vec()),
            Ok(None) if eof => return (frames, None),
            Ok(None) => {
                let n = sizes[turn % sizes.len()].min(data.len() - pos);
                turn += 1;
                buf.extend_from_slice(&data[pos..pos + n]);
                pos += n;
            }
            Err(e) => return (frames, Some(FrameError::from_read(e, max))),
        }
    }
}

fn check(data: &[u8], sizes: &[usize], max: usize) -> Result<(), TestCaseError> {
    let ((frames, error), used) = allocated_by(|| run_decoder(data, sizes, max));
    let (expected, end) = model(data, max);
    prop_assert!(frames.iter().all(|f| f.len() <= max), "a frame above the limit of {max}");
    prop_assert_eq!(&frames, &expected);
    match (&end, &error) {
        (End::Clean, None) => {}
        (End::TooLarge, Some(FrameError::TooLarge { max: m })) => prop_assert_eq!(*m, max),
        (End::Truncated, Some(FrameError::Io(_))) => {}
        _ => prop_assert!(false, "the stream ends {:?} but the decoder reported {:?}", end, error),
    }
    // The read buffer (doubling as it grows, and `BytesMut` may keep up to 64 KiB of its
    // first capacity once frames are split off it), one frame's reservation, the frames
    // returned: linear in the input and the limit, with no claim from the input trusted
    // beyond the limit.
    let budget = 4 * (data.len() + max + frame::HEADER_LEN) + 64 * 1024;
    prop_assert!(used <= budget, "{} input bytes with a limit of {max} allocated {used} bytes", data.len());
    Ok(())
}

/// Streams of well-formed frames (some above the limit), then maybe garbage or a cut.
fn framed_stream() -> impl Strategy<Value = (Vec<u8>, usize)> {
    (1usize..96, vec(vec(any::<u8>(), 0..120), 0..6), vec(any::<u8>(), 0..6), any::<bool>()).prop_map(
        |(max, payloads, tail, cut)| {
            let mut data = Vec::new();
            for p in &payloads {
                data.extend_from_slice(&(p.len() as u32).to_le_bytes());
                data.extend_from_slice(p);
            }
            if cut && !data.is_empty() {
                data.pop();
            }
            data.extend(tail);
            (data, max)
        },
    )
}

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary bytes, arbitrary read sizes, small limits.
    #[test]
    fn random_bytes_give_frames_or_an_error(
        data in vec(any::<u8>(), 0..300),
        sizes in vec(1usize..40, 1..4),
        max in 0usize..64,
    ) {
        let _one = measuring();
        check(&data, &sizes, max)?;
    }

    /// Mostly well-formed streams: frames at, under and over the limit, cut anywhere.
    #[test]
    fn framed_streams_give_their_frames((data, max) in framed_stream(), sizes in vec(1usize..9, 1..4)) {
        let _one = measuring();
        check(&data, &sizes, max)?;
    }

    /// With the default limit (16 MiB), a header claiming up to the limit reserves at most the
    /// limit: a lie costs no more than one honest frame; a claim above it is refused at once.
    #[test]
    fn a_length_claim_costs_at_most_the_frame_limit(claim in any::<u32>(), body in vec(any::<u8>(), 0..16)) {
        let _one = measuring();
        let max = frame::DEFAULT_MAX_FRAME;
        let mut data = claim.to_le_bytes().to_vec();
        data.extend(body);
        let ((frames, error), used) = allocated_by(|| run_decoder(&data, &[usize::MAX], max));
        prop_assert!(used <= max + 4096, "a claim of {claim} bytes allocated {used} bytes");
        let (expected, end) = model(&data, max);
        prop_assert_eq!(frames, expected);
        prop_assert_eq!(end == End::TooLarge, matches!(error, Some(FrameError::TooLarge { .. })));
    }
}
