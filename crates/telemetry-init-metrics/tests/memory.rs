//! Memory stays flat once a metric reached its cardinality limit, however
//! many new label values arrive (live heap bytes measured with a counting
//! global allocator; its own test binary).

// A global allocator cannot be written without `unsafe`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use metrics::{counter, histogram};
use telemetry_init_metrics::{MetricsConfig, TelemetryRecorder};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn distinct_label_values_beyond_the_limit_allocate_nothing_persistent() {
    let r = TelemetryRecorder::new(MetricsConfig::new()).unwrap();
    let record = |from: usize, to: usize| {
        metrics::with_local_recorder(&r, || {
            for i in from..to {
                let v = format!("/raw/{i}");
                histogram!("http.server.request.duration", "http.route" => v.clone()).record(0.01);
                counter!("requests", "user.id" => v).increment(1);
            }
        })
    };
    // Fill both metrics up to the limit (1000) and create the overflow series.
    record(0, 1100);
    let before = LIVE.load(Ordering::Relaxed);
    record(1100, 11_100);
    let after = LIVE.load(Ordering::Relaxed);
    assert_eq!(
        r.handle().series_count("http.server.request.duration"),
        1001
    );
    assert_eq!(r.handle().series_count("requests"), 1001);
    assert!(
        after - before < 1024,
        "live heap grew by {} bytes for 10,000 new label values",
        after - before
    );
    // Sanity: the counting allocator sees real growth when series are added.
    let before = LIVE.load(Ordering::Relaxed);
    metrics::with_local_recorder(&r, || {
        for i in 0..100 {
            counter!("fresh", "id" => i.to_string()).increment(1);
        }
    });
    assert!(LIVE.load(Ordering::Relaxed) - before > 100 * 64);
}
