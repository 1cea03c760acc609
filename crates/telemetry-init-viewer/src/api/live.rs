//! `/api/live`: Server-Sent Events announcing committed write batches,
//! coalesced to at most one message per signal every [`COALESCE`].

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::ApiState;
use crate::store::BatchSummary;

/// Shortest time between two notifications of a stream.
pub(super) const COALESCE: Duration = Duration::from_millis(250);

#[derive(Default)]
struct Pending {
    spans: (u64, BTreeSet<String>),
    logs: (u64, BTreeSet<String>),
    metrics: (u64, BTreeSet<String>),
    events: (u64, BTreeSet<String>),
}

impl Pending {
    fn add(&mut self, b: &BatchSummary) {
        let merge = |slot: &mut (u64, BTreeSet<String>), n: u64, names: &BTreeSet<String>| {
            slot.0 += n;
            // Bounded: a batch names few services; cap what one message lists.
            for s in names {
                if slot.1.len() >= 100 {
                    break;
                }
                slot.1.insert(s.clone());
            }
        };
        merge(&mut self.spans, b.spans, &b.span_services);
        merge(&mut self.logs, b.logs, &b.log_services);
        merge(&mut self.metrics, b.metric_points, &b.metric_services);
        merge(&mut self.events, b.events, &b.event_streams);
    }

    fn into_events(self) -> Vec<Result<Event, Infallible>> {
        let mut out = Vec::new();
        for (name, (count, services)) in [
            ("spans", self.spans),
            ("logs", self.logs),
            ("metrics", self.metrics),
            ("events", self.events),
        ] {
            if count > 0 {
                let data = serde_json::json!({ "count": count, "services": services });
                out.push(Ok(Event::default().event(name).data(data.to_string())));
            }
        }
        out
    }
}

pub(crate) async fn live(
    State(s): State<ApiState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = s.store.subscribe();
    let batches = stream::unfold(rx, |mut rx| async move {
        let mut pending = Pending::default();
        // Wait for the first batch, then gather for COALESCE.
        loop {
            match rx.recv().await {
                Ok(b) => {
                    pending.add(&b);
                    break;
                }
                // Missed batches: the next one still wakes the client up.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
        let deadline = tokio::time::Instant::now() + COALESCE;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Ok(b)) => pending.add(&b),
                Ok(Err(RecvError::Lagged(_))) => {}
                Ok(Err(RecvError::Closed)) | Err(_) => break,
            }
        }
        Some((stream::iter(pending.into_events()), rx))
    });
    Sse::new(batches.flatten()).keep_alive(KeepAlive::default())
}
