//! [`WithoutSpanActivity`]: a layer wrapper that does not pass on span
//! enters, exits and closes.
//!
//! WHY: a per-layer-filtered layer (`Filtered`) looks the span up in the
//! registry on every enter, exit and close, to see whether its filter
//! enabled it, before it calls its layer; a request's span is entered three
//! times, so each filtered layer costs seven lookups per request even when
//! it does nothing with them. The correlation layer, the JSON/text writer
//! and the export of events only need span creation, recorded values and
//! events. Their filters must need nothing more either: `Targets` and
//! `filter_fn` have no span hooks, while an `EnvFilter` with span-scoped
//! directives (`[span]`, `{field=…}`) tracks entered spans, so a layer behind
//! one is not wrapped.

use std::any::TypeId;

use tracing::span;
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;

/// Passes every callback to `L` except `on_enter`, `on_exit` and `on_close`.
/// Everything a filtered layer needs for its bookkeeping (callsite
/// registration, `enabled`, span creation, events, downcasts) is forwarded.
#[derive(Debug)]
pub(crate) struct WithoutSpanActivity<L>(pub(crate) L);

impl<S, L> Layer<S> for WithoutSpanActivity<L>
where
    S: Subscriber,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.0.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.0.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.0.enabled(metadata, ctx)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        self.0.on_new_span(attrs, id, ctx);
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.0.max_level_hint()
    }

    fn on_record(&self, span: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        self.0.on_record(span, values, ctx);
    }

    fn on_follows_from(&self, span: &span::Id, follows: &span::Id, ctx: Context<'_, S>) {
        self.0.on_follows_from(span, follows, ctx);
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        self.0.event_enabled(event, ctx)
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.0.on_event(event, ctx);
    }

    fn on_id_change(&self, old: &span::Id, new: &span::Id, ctx: Context<'_, S>) {
        #[allow(deprecated)]
        self.0.on_id_change(old, new, ctx);
    }

    // The default `on_enter`, `on_exit` and `on_close` do nothing: that is
    // the point.

    // The one `unsafe` of the library: a wrapper must forward this trait
    // method (every tracing-subscriber wrapper does), or the stack stops
    // seeing the wrapped layer as per-layer filtered and combines its level
    // hint and interest as if it were a global filter.
    #[allow(unsafe_code)]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            return Some(self as *const Self as *const ());
        }
        // SAFETY: forwarded to the wrapped layer, which upholds the
        // contract for its own types (the per-layer-filter marker among
        // them: the stack must still see this layer as filtered).
        unsafe { self.0.downcast_raw(id) }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tracing_subscriber::filter::{Targets, filter_fn};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Default, Clone)]
    struct Counts(Arc<[AtomicUsize; 5]>);

    impl Counts {
        fn get(&self) -> [usize; 5] {
            std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed))
        }
    }

    /// Counts new spans, records, events, enters and closes.
    struct Counting(Counts);

    impl<S: Subscriber> Layer<S> for Counting {
        fn on_new_span(&self, _: &span::Attributes<'_>, _: &span::Id, _: Context<'_, S>) {
            self.0.0[0].fetch_add(1, Ordering::Relaxed);
        }
        fn on_record(&self, _: &span::Id, _: &span::Record<'_>, _: Context<'_, S>) {
            self.0.0[1].fetch_add(1, Ordering::Relaxed);
        }
        fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {
            self.0.0[2].fetch_add(1, Ordering::Relaxed);
        }
        fn on_enter(&self, _: &span::Id, _: Context<'_, S>) {
            self.0.0[3].fetch_add(1, Ordering::Relaxed);
        }
        fn on_close(&self, _: span::Id, _: Context<'_, S>) {
            self.0.0[4].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The wrapped filtered layer sees span creation, records and events
    /// exactly as the unwrapped one (its filter still applies), and no
    /// enters or closes; a filtered layer beside it is not disturbed.
    #[test]
    fn forwards_all_but_enter_exit_close_and_keeps_the_filter() {
        let (wrapped, plain) = (Counts::default(), Counts::default());
        let targets: Targets = "kept=info".parse().unwrap();
        let subscriber = tracing_subscriber::registry()
            .with(WithoutSpanActivity(
                Counting(wrapped.clone()).with_filter(targets.clone()),
            ))
            .with(Counting(plain.clone()).with_filter(targets))
            .with(WithoutSpanActivity(
                Counting(Counts::default()).with_filter(filter_fn(|m| m.is_span())),
            ));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(target: "kept", "s", f = tracing::field::Empty);
            span.record("f", 1);
            span.in_scope(|| tracing::info!(target: "kept", "in"));
            tracing::info!(target: "dropped", "out");
            tracing::info_span!(target: "dropped", "t").in_scope(|| {});
            drop(span);
        });
        assert_eq!(plain.get(), [1, 1, 1, 1, 1]);
        assert_eq!(wrapped.get(), [1, 1, 1, 0, 0]);
    }

    struct Marker;
    impl<S: Subscriber> Layer<S> for Marker {}

    /// Downcasts reach through the wrapper: how the stack finds the
    /// per-layer filter's marker, and how tracing-opentelemetry-style
    /// lookups find a wrapped layer.
    #[test]
    fn downcasts_reach_the_wrapped_layer_and_its_filter() {
        let targets: Targets = "kept=info".parse().unwrap();
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::registry().with(WithoutSpanActivity(Marker.with_filter(targets))),
        );
        assert!(dispatch.downcast_ref::<Marker>().is_some());
        assert!(dispatch.downcast_ref::<Targets>().is_some());
        assert!(
            dispatch
                .downcast_ref::<WithoutSpanActivity<
                    tracing_subscriber::filter::Filtered<
                        Marker,
                        Targets,
                        tracing_subscriber::Registry,
                    >,
                >>()
                .is_some()
        );
    }
}
