//! Export requests that fit the collector's size limit.
//!
//! The OpenTelemetry Collector and Alloy refuse requests over 4 MiB by
//! default (`413` / `RESOURCE_EXHAUSTED`), and a refused request loses
//! every item in it: one client's huge span would cost every other
//! request's spans in its batch. So a batch is split before it is sent
//! until each request fits, and split again if the collector still refuses
//! one; an item that cannot fit alone is dropped and counted.
//!
//! Transport-independent: it works on any encoder from a run of items to
//! request bytes (the direct span encoder; a log or HTTP encoder alike).

use std::future::Future;
use std::ops::Range;

use bytes::Bytes;

use super::batch::{Delivered, ExportError, ExportResult};

/// A run of a batch, with its request when already encoded.
pub(crate) type Run = (Range<usize>, Option<Bytes>);

/// A batch cut into requests that each fit.
#[derive(Debug, Default)]
struct Fitted {
    /// Consecutive runs of the batch, with their encoded request.
    requests: Vec<(Range<usize>, Bytes)>,
    /// How many items could not fit even alone (dropped).
    too_large: usize,
}

/// All of `items` as runs for [`send_runs`], each already encoded in a
/// request of at most `max` bytes (see [`encode_to_fit`]), and how many
/// items could not fit even alone.
pub(crate) fn fit_runs<T>(
    items: &[T],
    max: usize,
    encode: &mut impl FnMut(&[T]) -> Bytes,
) -> (Vec<Run>, u64) {
    let mut fitted = Fitted::default();
    encode_to_fit(items, 0..items.len(), max, encode, &mut fitted);
    let runs = fitted
        .requests
        .into_iter()
        .map(|(r, b)| (r, Some(b)))
        .collect();
    (runs, fitted.too_large as u64)
}

/// Encodes `items[range]` as requests of at most `max` bytes each: the whole
/// run when it fits (one encoding, the common case), else its halves, and so
/// on; a single item over `max` is left out and counted.
///
/// The cost of a batch that does not fit is one more encoding per halving
/// level (log2 of the batch size at most).
fn encode_to_fit<T>(
    items: &[T],
    range: Range<usize>,
    max: usize,
    encode: &mut impl FnMut(&[T]) -> Bytes,
    out: &mut Fitted,
) {
    if range.is_empty() {
        return;
    }
    let body = encode(&items[range.clone()]);
    if body.len() <= max {
        out.requests.push((range, body));
        return;
    }
    drop(body);
    if range.len() == 1 {
        out.too_large += 1;
        return;
    }
    let (left, right) = halves(range);
    encode_to_fit(items, left, max, encode, out);
    encode_to_fit(items, right, max, encode, out);
}

/// The two halves of a run of two or more items.
pub(crate) fn halves(range: Range<usize>) -> (Range<usize>, Range<usize>) {
    let mid = range.start + range.len() / 2;
    (range.start..mid, mid..range.end)
}

/// Whether a failed export says its request was too large: HTTP `413`,
/// or gRPC `RESOURCE_EXHAUSTED` without `RetryInfo` (what the Collector
/// answers to a message over its `max_recv_msg_size_mib`); the transport
/// names both `too_large`. Throttling (HTTP `429`, `RESOURCE_EXHAUSTED`
/// with `RetryInfo`) is retried there, never split.
fn refused_as_too_large(e: &ExportError) -> bool {
    e.error_type == ExportError::TOO_LARGE
}

/// Sends each run of items (a range of the batch, with its request already
/// encoded, or `None` to have `send` encode it), in order. A run the
/// collector refuses as too large is split in two and each half sent; a
/// single item refused so is dropped and counted. Other failures fail that
/// run only: the other runs still go. `too_large` items were already left
/// out before sending. The result covers the whole batch: items not
/// delivered are `rejected` with the reason, or the error when none was.
pub(crate) async fn send_runs<F, Fut>(
    runs: Vec<Run>,
    mut too_large: u64,
    mut send: F,
) -> ExportResult
where
    F: FnMut(Range<usize>, Option<Bytes>) -> Fut,
    Fut: Future<Output = ExportResult>,
{
    let mut delivered = 0u64;
    let mut rejected = 0u64;
    let mut failure: Option<ExportError> = None;
    let mut failed = 0u64;
    let mut message = None;
    // A stack, so halves go out in order.
    let mut work: Vec<Run> = runs;
    work.reverse();
    while let Some((range, body)) = work.pop() {
        match send(range.clone(), body).await {
            Ok(d) => {
                delivered += range.len() as u64;
                rejected += d.rejected;
                message = message.or(d.message);
            }
            Err(e) if refused_as_too_large(&e) && range.len() > 1 => {
                let (left, right) = halves(range);
                work.push((right, None));
                work.push((left, None));
            }
            Err(e) if refused_as_too_large(&e) => too_large += 1,
            Err(e) => {
                failed += range.len() as u64;
                failure = Some(e);
            }
        }
    }
    if delivered == 0 && (failed > 0 || too_large > 0) {
        return Err(failure.unwrap_or_else(|| too_large_error(too_large)));
    }
    if failed == 0 && too_large == 0 {
        return Ok(Delivered {
            rejected,
            message,
            reason: None,
        });
    }
    // Some delivered, some not: the others count as rejected, with why.
    let (reason, why) = match failure {
        Some(e) => (e.error_type, e.message),
        None => (ExportError::TOO_LARGE, too_large_error(too_large).message),
    };
    Ok(Delivered {
        rejected: rejected + failed + too_large,
        message: Some(why),
        reason: Some(reason),
    })
}

fn too_large_error(n: u64) -> ExportError {
    ExportError::too_large(format!(
        "{n} item(s) too large for one export request even alone; dropped"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items are their encoded sizes; a request is the sum plus 10 bytes.
    fn encoder(calls: &mut usize) -> impl FnMut(&[usize]) -> Bytes + '_ {
        move |run: &[usize]| {
            *calls += 1;
            Bytes::from(vec![0u8; 10 + run.iter().sum::<usize>()])
        }
    }

    #[test]
    fn a_batch_that_fits_is_encoded_once() {
        let items = vec![100; 50];
        let mut calls = 0;
        let mut out = Fitted::default();
        encode_to_fit(&items, 0..50, 10_000, &mut encoder(&mut calls), &mut out);
        assert_eq!(calls, 1);
        assert_eq!(out.requests.len(), 1);
        assert_eq!(out.requests[0].0, 0..50);
        assert_eq!(out.too_large, 0);
    }

    #[test]
    fn an_oversized_batch_is_split_and_a_huge_item_dropped() {
        let mut items = vec![100; 64];
        items[17] = 1_000_000;
        let mut calls = 0;
        let mut out = Fitted::default();
        encode_to_fit(&items, 0..64, 1000, &mut encoder(&mut calls), &mut out);
        assert_eq!(out.too_large, 1);
        // Every other item is in exactly one request, in order, each fitting.
        let mut covered = Vec::new();
        for (range, body) in &out.requests {
            assert!(body.len() <= 1000, "{} bytes", body.len());
            covered.extend(range.clone());
        }
        let expected: Vec<usize> = (0..64).filter(|&i| i != 17).collect();
        assert_eq!(covered, expected);
        assert!(calls < 64, "halving, not item by item: {calls} encodings");
    }

    #[test]
    fn refused_runs_are_split_and_only_a_lone_item_dropped() {
        // A collector that refuses any request of more than 3 items, and
        // fails the one holding item 9 for another reason.
        let items: Vec<usize> = (0..16).collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let sent = std::cell::RefCell::new(Vec::new());
        let result = rt.block_on(send_runs(
            vec![(0..16, None)],
            2,
            |range: Range<usize>, _body| {
                let run = &items[range];
                let r = if run.len() > 3 {
                    Err(ExportError::too_large("413"))
                } else if run.contains(&9) {
                    Err(ExportError::failed("unavailable"))
                } else {
                    sent.borrow_mut().extend_from_slice(run);
                    Ok(Delivered::default())
                };
                std::future::ready(r)
            },
        ));
        let d = result.unwrap();
        // 16 items in 8 runs of 2: all but the run holding 9 delivered,
        // and the 2 left out before sending.
        assert_eq!(d.rejected, 4);
        assert_eq!(d.reason, Some("export_failed"));
        let expected: Vec<usize> = (0..16).filter(|i| *i != 8 && *i != 9).collect();
        assert_eq!(*sent.borrow(), expected, "in order, each once");

        // Only too-large: the error says so.
        let result = rt.block_on(send_runs(vec![(0..1, None)], 0, |_, _| {
            std::future::ready(Err(ExportError::too_large("RESOURCE_EXHAUSTED")))
        }));
        assert_eq!(result.unwrap_err().error_type, "too_large");
    }
}
