//! Lock-free per-series storage: counters, gauges, histograms and exemplar
//! slots. Everything on the record path is plain atomics.

use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::{SystemTime, UNIX_EPOCH};

/// Monotonic counter cell.
#[derive(Debug, Default)]
pub(crate) struct CounterCell {
    value: AtomicU64,
}

impl CounterCell {
    #[inline]
    pub(crate) fn increment(&self, v: u64) {
        self.value.fetch_add(v, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn absolute(&self, v: u64) {
        self.value.fetch_max(v, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// Gauge cell: an `f64` stored as bits.
#[derive(Debug, Default)]
pub(crate) struct GaugeCell {
    bits: AtomicU64,
}

impl GaugeCell {
    #[inline]
    pub(crate) fn set(&self, v: f64) {
        self.bits.store(v.to_bits(), Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn add(&self, delta: f64) {
        atomic_f64_add(&self.bits, delta);
    }

    pub(crate) fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }
}

#[inline]
fn atomic_f64_add(cell: &AtomicU64, delta: f64) {
    let mut cur = cell.load(Ordering::Relaxed);
    loop {
        let new = (f64::from_bits(cur) + delta).to_bits();
        match cell.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => cur = actual,
        }
    }
}

/// An exemplar as read back from a slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ExemplarValue {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    pub(crate) value: f64,
    /// Nanoseconds since the Unix epoch.
    pub(crate) timestamp_nanos: u64,
}

/// A single-writer-wins seqlock holding the latest exemplar of one bucket.
///
/// Writers never block: if another writer holds the slot, the new exemplar is
/// simply dropped (the slot keeps "a recent" exemplar, which is all
/// OpenMetrics asks for). Readers retry a few times and give up otherwise.
#[derive(Debug, Default)]
pub(crate) struct ExemplarSlot {
    seq: AtomicU64,
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
    span: AtomicU64,
    value: AtomicU64,
    ts: AtomicU64,
}

impl ExemplarSlot {
    #[inline]
    pub(crate) fn store(&self, trace_id: u128, span_id: u64, value: f64) {
        let s = self.seq.load(Ordering::Relaxed);
        if s & 1 == 1
            || self
                .seq
                .compare_exchange(s, s + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        fence(Ordering::Release);
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        self.trace_hi
            .store((trace_id >> 64) as u64, Ordering::Relaxed);
        self.trace_lo.store(trace_id as u64, Ordering::Relaxed);
        self.span.store(span_id, Ordering::Relaxed);
        self.value.store(value.to_bits(), Ordering::Relaxed);
        self.ts.store(ts, Ordering::Relaxed);
        self.seq.store(s + 2, Ordering::Release);
    }

    pub(crate) fn load(&self) -> Option<ExemplarValue> {
        for attempt in 0..128 {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 == 0 {
                return None;
            }
            if s1 & 1 == 1 {
                // Render path only: spin briefly, then let the writer run.
                if attempt < 8 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
                continue;
            }
            let hi = self.trace_hi.load(Ordering::Relaxed);
            let lo = self.trace_lo.load(Ordering::Relaxed);
            let span = self.span.load(Ordering::Relaxed);
            let value = self.value.load(Ordering::Relaxed);
            let ts = self.ts.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            let s2 = self.seq.load(Ordering::Relaxed);
            if s1 == s2 {
                return Some(ExemplarValue {
                    trace_id: ((hi as u128) << 64) | lo as u128,
                    span_id: span,
                    value: f64::from_bits(value),
                    timestamp_nanos: ts,
                });
            }
        }
        None
    }
}

/// Explicit-bucket histogram with non-cumulative bucket counters.
///
/// `buckets[i]` counts values `v` with `bounds[i-1] < v <= bounds[i]`; the last
/// element is the `+Inf` bucket. The total count is derived from the buckets
/// so that `_count` always equals the `+Inf` bucket.
#[derive(Debug)]
pub(crate) struct HistogramCell {
    bounds: std::sync::Arc<[f64]>,
    buckets: Box<[AtomicU64]>,
    sum_bits: AtomicU64,
    exemplars: Option<Box<[ExemplarSlot]>>,
}

/// A consistent-enough snapshot of a histogram for rendering.
#[derive(Debug, Clone)]
pub(crate) struct HistogramSnapshot {
    /// Non-cumulative counts, `bounds.len() + 1` entries.
    pub(crate) counts: Vec<u64>,
    pub(crate) sum: f64,
    pub(crate) exemplars: Vec<Option<ExemplarValue>>,
}

impl HistogramCell {
    pub(crate) fn new(bounds: std::sync::Arc<[f64]>, exemplars: bool) -> Self {
        let n = bounds.len() + 1;
        Self {
            buckets: (0..n).map(|_| AtomicU64::new(0)).collect(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
            exemplars: exemplars.then(|| (0..n).map(|_| ExemplarSlot::default()).collect()),
            bounds,
        }
    }

    pub(crate) fn bounds(&self) -> &std::sync::Arc<[f64]> {
        &self.bounds
    }

    pub(crate) fn has_exemplars(&self) -> bool {
        self.exemplars.is_some()
    }

    /// Index of the bucket `v` falls into (inclusive upper bounds).
    #[inline]
    pub(crate) fn bucket_index(&self, v: f64) -> usize {
        // Bucket lists are short (~15); a linear scan beats binary search.
        let b = &*self.bounds;
        if b.len() <= 24 {
            b.iter().position(|&x| v <= x).unwrap_or(b.len())
        } else {
            b.partition_point(|&x| x < v)
        }
    }

    /// Records `count` observations of `v`; returns the bucket index, or
    /// `None` if the value was dropped (non-finite).
    #[inline]
    pub(crate) fn record(&self, v: f64, count: u64) -> Option<usize> {
        if !v.is_finite() {
            return None;
        }
        let idx = self.bucket_index(v);
        self.buckets[idx].fetch_add(count, Ordering::Relaxed);
        atomic_f64_add(&self.sum_bits, v * count as f64);
        Some(idx)
    }

    #[inline]
    pub(crate) fn store_exemplar(&self, idx: usize, trace_id: u128, span_id: u64, v: f64) {
        if let Some(slots) = &self.exemplars {
            slots[idx].store(trace_id, span_id, v);
        }
    }

    /// Calls `f` with every bucket's exemplar, where there is one.
    pub(crate) fn for_each_exemplar(&self, mut f: impl FnMut(ExemplarValue)) {
        if let Some(slots) = &self.exemplars {
            slots.iter().filter_map(ExemplarSlot::load).for_each(&mut f);
        }
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum: f64::from_bits(self.sum_bits.load(Ordering::Relaxed)),
            exemplars: match &self.exemplars {
                Some(slots) => slots.iter().map(ExemplarSlot::load).collect(),
                None => vec![None; self.buckets.len()],
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn bucket_index_is_inclusive_upper_bound() {
        let h = HistogramCell::new(Arc::from(vec![0.1, 0.5, 1.0]), false);
        assert_eq!(h.bucket_index(0.0), 0);
        assert_eq!(h.bucket_index(0.1), 0);
        assert_eq!(h.bucket_index(0.100001), 1);
        assert_eq!(h.bucket_index(1.0), 2);
        assert_eq!(h.bucket_index(1.5), 3);
        assert_eq!(h.record(f64::NAN, 1), None);
        assert_eq!(h.record(f64::INFINITY, 1), None);
        h.record(0.3, 2);
        let s = h.snapshot();
        assert_eq!(s.counts, vec![0, 2, 0, 0]);
        assert!((s.sum - 0.6).abs() < 1e-12);
    }

    #[test]
    fn long_bucket_lists_use_binary_search_consistently() {
        let bounds: Vec<f64> = (1..100).map(|i| i as f64).collect();
        let h = HistogramCell::new(Arc::from(bounds.clone()), false);
        for v in [0.5, 1.0, 1.5, 50.0, 98.9, 99.0, 99.5, 1000.0] {
            let linear = bounds.iter().position(|&x| v <= x).unwrap_or(bounds.len());
            assert_eq!(h.bucket_index(v), linear, "value {v}");
        }
    }

    #[test]
    fn exemplar_slot_roundtrip() {
        let s = ExemplarSlot::default();
        assert_eq!(s.load(), None);
        s.store(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10, 42, 0.25);
        let e = s.load().unwrap();
        assert_eq!(e.trace_id, 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        assert_eq!(e.span_id, 42);
        assert_eq!(e.value, 0.25);
        assert!(e.timestamp_nanos > 0);
        s.store(7, 8, 0.5);
        assert_eq!(s.load().unwrap().span_id, 8);
    }

    #[test]
    fn exemplar_slot_never_returns_torn_values() {
        let slot = Arc::new(ExemplarSlot::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..2u64)
            .map(|t| {
                let (slot, stop) = (slot.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut i = t;
                    while !stop.load(Ordering::Relaxed) {
                        // All fields derive from `i`: a torn read is detectable.
                        slot.store((u128::from(i) << 64) | u128::from(i), i, i as f64);
                        i += 2;
                        if i % 256 < 2 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut seen = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut reads = 0;
        while (reads < 200_000 || seen < 100) && std::time::Instant::now() < deadline {
            reads += 1;
            if let Some(e) = slot.load() {
                let i = e.span_id;
                assert_eq!(e.trace_id, (u128::from(i) << 64) | u128::from(i));
                assert_eq!(e.value, i as f64);
                seen += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        assert!(seen >= 100, "only {seen} successful reads out of {reads}");
    }

    #[test]
    fn gauge_add_and_counter_absolute() {
        let g = GaugeCell::default();
        g.add(2.0);
        g.add(-0.5);
        assert_eq!(g.get(), 1.5);
        g.set(-3.0);
        assert_eq!(g.get(), -3.0);
        let c = CounterCell::default();
        c.increment(5);
        c.absolute(3);
        assert_eq!(c.get(), 5);
        c.absolute(9);
        assert_eq!(c.get(), 9);
    }
}
