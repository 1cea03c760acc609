//! The series registry behind the recorder.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use metrics::{CounterFn, GaugeFn, HistogramFn, Key, Label, Unit};
use opentelemetry::metrics::Meter;

use crate::config::SharedConfig;
use crate::naming::{self, Kind};
use crate::otel::{self, Observed, OtelFamily, OtelSeries};
use crate::storage::{CounterCell, GaugeCell, HistogramCell};
use crate::trace_context::TraceContextFn;
use telemetry_init_semconv::metric;

/// OpenTelemetry attribute marking the overflow series.
pub(crate) use otel::OVERFLOW_LABEL;
/// Counter of records folded into overflow series.
pub(crate) const OVERFLOW_RECORDS_METRIC: &str = metric::OVERFLOWED_RECORDS.name;

pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// Hasher for already-hashed `u64` keys.
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdentityHasher>>;
/// `Key`'s `Hash` impl writes only its precomputed hash.
type FastMap = HashMap<Key, Arc<Series>, BuildHasherDefault<IdentityHasher>>;

/// A metric value cell.
pub(crate) enum Cell {
    Counter(CounterCell),
    Gauge(GaugeCell),
    Histogram(HistogramCell),
}

/// One time series: a label set of a family, with its lock-free storage.
///
/// `Series` itself implements the `metrics` handle traits so that
/// registering hands out an `Arc` clone instead of allocating a new handle.
pub(crate) struct Series {
    labels: Box<[Label]>,
    user_len: usize,
    prom_labels: String,
    cell: Cell,
    hook: Option<TraceContextFn>,
    overflow: bool,
    overflow_records: Option<Arc<Series>>,
    otel: OnceLock<OtelSeries>,
}

impl Series {
    fn new(
        labels: Vec<Label>,
        user_len: usize,
        cell: Cell,
        hook: Option<TraceContextFn>,
        overflow: bool,
        overflow_records: Option<Arc<Series>>,
    ) -> Self {
        let mut prom_labels = String::new();
        for (i, l) in labels.iter().enumerate() {
            if i > 0 {
                prom_labels.push(',');
            }
            prom_labels.push_str(&naming::sanitize_label_name(l.key()));
            prom_labels.push_str("=\"");
            naming::escape_label_value(l.value(), &mut prom_labels);
            prom_labels.push('"');
        }
        Self {
            labels: labels.into_boxed_slice(),
            user_len,
            prom_labels,
            cell,
            hook,
            overflow,
            overflow_records,
            otel: OnceLock::new(),
        }
    }

    /// All labels (caller's, then constant labels), OpenTelemetry keys.
    pub(crate) fn labels(&self) -> &[Label] {
        &self.labels
    }

    /// Pre-rendered Prometheus label pairs, without braces.
    pub(crate) fn prom_labels(&self) -> &str {
        &self.prom_labels
    }

    pub(crate) fn cell(&self) -> &Cell {
        &self.cell
    }

    pub(crate) fn otel(&self) -> Option<&OtelSeries> {
        self.otel.get()
    }

    pub(crate) fn counter_value(&self) -> u64 {
        match &self.cell {
            Cell::Counter(c) => c.get(),
            _ => 0,
        }
    }

    pub(crate) fn gauge_value(&self) -> f64 {
        match &self.cell {
            Cell::Gauge(g) => g.get(),
            _ => 0.0,
        }
    }

    fn is_overflow(&self) -> bool {
        self.overflow
    }

    fn matches(&self, labels: &[Label]) -> bool {
        self.user_len == labels.len()
            && labels
                .iter()
                .all(|l| self.labels[..self.user_len].contains(l))
    }

    #[inline]
    fn note_overflow(&self, records: u64) {
        if let Some(o) = &self.overflow_records {
            CounterFn::increment(&**o, records);
        }
    }
}

impl CounterFn for Series {
    #[inline]
    fn increment(&self, value: u64) {
        if let Cell::Counter(c) = &self.cell {
            c.increment(value);
            self.note_overflow(1);
        }
    }

    #[inline]
    fn absolute(&self, value: u64) {
        if let Cell::Counter(c) = &self.cell {
            c.absolute(value);
            self.note_overflow(1);
        }
    }
}

impl GaugeFn for Series {
    #[inline]
    fn increment(&self, value: f64) {
        if let Cell::Gauge(g) = &self.cell {
            g.add(value);
            self.note_overflow(1);
        }
    }

    #[inline]
    fn decrement(&self, value: f64) {
        if let Cell::Gauge(g) = &self.cell {
            g.add(-value);
            self.note_overflow(1);
        }
    }

    #[inline]
    fn set(&self, value: f64) {
        if let Cell::Gauge(g) = &self.cell {
            g.set(value);
            self.note_overflow(1);
        }
    }
}

impl HistogramFn for Series {
    #[inline]
    fn record(&self, value: f64) {
        self.record_many(value, 1);
    }

    #[inline]
    fn record_many(&self, value: f64, count: usize) {
        let Cell::Histogram(h) = &self.cell else {
            return;
        };
        let Some(idx) = h.record(value, count as u64) else {
            return;
        };
        if let Some(hook) = self.hook
            && h.has_exemplars()
            && let Some((trace_id, span_id)) = hook()
        {
            h.store_exemplar(
                idx,
                u128::from_be_bytes(trace_id.to_bytes()),
                u64::from_be_bytes(span_id.to_bytes()),
                value,
            );
        }
        if let Some(o) = self.otel.get() {
            for _ in 0..count {
                o.record(value);
            }
        }
        self.note_overflow(count as u64);
    }
}

struct FamilyState {
    by_hash: IdMap<Vec<Arc<Series>>>,
    len: usize,
}

/// All series of one metric name.
pub(crate) struct Family {
    name: String,
    kind: Kind,
    limit: usize,
    bounds: Option<Arc<[f64]>>,
    state: RwLock<FamilyState>,
    overflow: OnceLock<Arc<Series>>,
    otel: OnceLock<OtelFamily>,
}

impl Family {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    pub(crate) fn bounds(&self) -> Option<&Arc<[f64]>> {
        self.bounds.as_ref()
    }

    /// Calls `f` for every series, the overflow series last.
    pub(crate) fn for_each_series(&self, mut f: impl FnMut(&Arc<Series>)) {
        {
            let st = read(&self.state);
            for bucket in st.by_hash.values() {
                for s in bucket {
                    f(s);
                }
            }
        }
        if let Some(o) = self.overflow.get() {
            f(o);
        }
    }

    /// Number of series, including the overflow series once it exists.
    pub(crate) fn series_count(&self) -> usize {
        read(&self.state).len + usize::from(self.overflow.get().is_some())
    }
}

impl Observed for Family {
    fn observe_counters(&self, f: &mut dyn FnMut(u64, &[opentelemetry::KeyValue])) {
        self.for_each_series(|s| {
            if let Some(o) = s.otel() {
                f(s.counter_value(), &o.attrs);
            }
        });
    }

    fn observe_gauges(&self, f: &mut dyn FnMut(f64, &[opentelemetry::KeyValue])) {
        self.for_each_series(|s| {
            if let Some(o) = s.otel() {
                f(s.gauge_value(), &o.attrs);
            }
        });
    }
}

/// Description of a metric, from `describe_*!`, the config or the catalogue.
#[derive(Debug, Clone, Default)]
pub(crate) struct Description {
    pub(crate) unit: Option<Cow<'static, str>>,
    pub(crate) help: Option<String>,
}

/// Unit and help text of the metrics telemetry-init records or knows (the
/// one vocabulary, `telemetry_init_semconv::metric`).
pub(crate) fn catalogue(name: &str) -> Option<(&'static str, &'static str)> {
    metric::find(name).map(|m| (m.unit, m.help))
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Upper bound of entries in each register fast-path map.
const FAST_PATH_CAPACITY: usize = 65_536;

/// The registry shared by the recorder and all handles.
pub(crate) struct Registry {
    pub(crate) config: SharedConfig,
    hasher: RandomState,
    /// Register fast path per kind: the facade `Key` (name + labels in call
    /// order, hash precomputed by the `metrics` macros, often at compile
    /// time) → series. Only real series are cached, never the overflow
    /// series, so its size is bounded by the registered series.
    fast: [RwLock<FastMap>; 3],
    families: RwLock<HashMap<String, Arc<Family>>>,
    descriptions: RwLock<HashMap<String, Description>>,
    meter: OnceLock<Meter>,
}

impl Registry {
    pub(crate) fn new(config: SharedConfig) -> Self {
        Self {
            config,
            hasher: RandomState::new(),
            fast: Default::default(),
            families: RwLock::new(HashMap::new()),
            descriptions: RwLock::new(HashMap::new()),
            meter: OnceLock::new(),
        }
    }

    pub(crate) fn describe(&self, name: &str, unit: Option<Unit>, help: &str) {
        let mut d = write(&self.descriptions);
        let e = d.entry(name.to_string()).or_default();
        if let Some(u) = unit.and_then(naming::otel_unit) {
            e.unit = Some(Cow::Borrowed(u));
        }
        if !help.is_empty() {
            e.help = Some(help.to_string());
        }
    }

    /// Effective unit and help of a metric.
    pub(crate) fn description(&self, name: &str) -> Description {
        let described = read(&self.descriptions)
            .get(name)
            .cloned()
            .unwrap_or_default();
        let cat = catalogue(name);
        Description {
            unit: described
                .unit
                .or_else(|| self.config.configured_unit(name))
                .or_else(|| cat.map(|(u, _)| Cow::Borrowed(u))),
            help: described.help.or_else(|| cat.map(|(_, h)| h.to_string())),
        }
    }

    pub(crate) fn families(&self) -> Vec<Arc<Family>> {
        read(&self.families).values().cloned().collect()
    }

    pub(crate) fn family(&self, name: &str) -> Option<Arc<Family>> {
        read(&self.families).get(name).cloned()
    }

    fn family_or_create(&self, name: &str, kind: Kind) -> Option<Arc<Family>> {
        if let Some(f) = read(&self.families).get(name) {
            return (f.kind == kind).then(|| f.clone());
        }
        let (family, created) = {
            let mut map = write(&self.families);
            match map.get(name) {
                Some(f) => (f.clone(), false),
                None => {
                    let f = Arc::new(Family {
                        name: name.to_string(),
                        kind,
                        limit: self.config.limit_for(name),
                        bounds: (kind == Kind::Histogram).then(|| {
                            let unit = self.description(name).unit;
                            Arc::from(self.config.buckets_for(name, unit.as_deref()))
                        }),
                        state: RwLock::new(FamilyState {
                            by_hash: IdMap::default(),
                            len: 0,
                        }),
                        overflow: OnceLock::new(),
                        otel: OnceLock::new(),
                    });
                    map.insert(name.to_string(), f.clone());
                    (f, true)
                }
            }
        };
        if family.kind != kind {
            return None;
        }
        if created && let Some(meter) = self.meter.get() {
            self.init_otel_family(meter, &family);
        }
        Some(family)
    }

    fn init_otel_family<'f>(&self, meter: &Meter, family: &'f Arc<Family>) -> &'f OtelFamily {
        family.otel.get_or_init(|| {
            let d = self.description(&family.name);
            // Coerced here: the observable instruments hold the family weakly.
            let values: std::sync::Weak<Family> = Arc::downgrade(family);
            otel::build_family(
                meter,
                &family.name,
                family.kind,
                family.bounds.as_deref(),
                values as std::sync::Weak<dyn Observed>,
                d.unit.map(Cow::into_owned),
                d.help,
            )
        })
    }

    fn init_otel_series(&self, family: &Arc<Family>, series: &Series) {
        if let Some(meter) = self.meter.get() {
            let of = self.init_otel_family(meter, family);
            series
                .otel
                .get_or_init(|| otel::build_series(of, series.labels()));
        }
    }

    /// Mirrors all existing and future metrics to `meter`.
    pub(crate) fn attach_meter(&self, meter: Meter) -> bool {
        if self.meter.set(meter).is_err() {
            return false;
        }
        for family in self.families() {
            // Collect first: never call into the SDK while holding a family
            // lock (its collection thread takes SDK locks, then ours).
            let mut series = Vec::new();
            family.for_each_series(|s| series.push(s.clone()));
            for s in series {
                self.init_otel_series(&family, &s);
            }
        }
        true
    }

    fn label_hash(&self, labels: &[Label]) -> u64 {
        // Order-independent: the same label set in any order is one series.
        labels
            .iter()
            .map(|l| self.hasher.hash_one((l.key(), l.value())))
            .fold(labels.len() as u64, u64::wrapping_add)
    }

    fn new_cell(&self, family: &Family) -> Cell {
        match family.kind {
            Kind::Counter => Cell::Counter(CounterCell::default()),
            Kind::Gauge => Cell::Gauge(GaugeCell::default()),
            Kind::Histogram => Cell::Histogram(HistogramCell::new(
                family
                    .bounds
                    .clone()
                    .unwrap_or_else(|| Arc::from(Vec::new())),
                self.config.trace_context.is_some(),
            )),
        }
    }

    /// Finds or creates the series for `key`; `None` on a kind conflict.
    pub(crate) fn series(&self, kind: Kind, key: &Key) -> Option<Arc<Series>> {
        let fast = &self.fast[kind as usize];
        if let Some(s) = read(fast).get(key) {
            return Some(s.clone());
        }
        let family = self.family_or_create(key.name(), kind)?;
        let max = self.config.label_length_limit;
        let mut cut = false;
        let mut labels: Vec<Label> = Vec::with_capacity(key.labels().len());
        for l in key.labels() {
            let l = if l.key().len() > max || l.value().len() > max {
                cut = true;
                Label::new(
                    truncate(l.key(), max).to_string(),
                    truncate(l.value(), max).to_string(),
                )
            } else {
                l.clone()
            };
            // A repeated key keeps its last value (a label set is a map).
            match labels.iter_mut().find(|x| x.key() == l.key()) {
                Some(existing) => *existing = l,
                None => labels.push(l),
            }
        }
        let series = self.series_in(&family, labels);
        // A key with an over-long label is not cached: the cache keeps the
        // key as recorded, and endless long values that cut to one series
        // would each hold their full text there.
        if !series.is_overflow() && !cut {
            let mut map = write(fast);
            if map.len() < FAST_PATH_CAPACITY {
                map.insert(key.clone(), series.clone());
            }
        }
        Some(series)
    }

    fn series_in(&self, family: &Arc<Family>, labels: Vec<Label>) -> Arc<Series> {
        let hash = self.label_hash(&labels);
        {
            let st = read(&family.state);
            if let Some(s) = st
                .by_hash
                .get(&hash)
                .and_then(|b| b.iter().find(|s| s.matches(&labels)))
            {
                return s.clone();
            }
            if st.len >= family.limit {
                drop(st);
                return self.overflow_series(family);
            }
        }
        let series = {
            let mut st = write(&family.state);
            if let Some(s) = st
                .by_hash
                .get(&hash)
                .and_then(|b| b.iter().find(|s| s.matches(&labels)))
            {
                return s.clone();
            }
            if st.len >= family.limit {
                drop(st);
                return self.overflow_series(family);
            }
            let user_len = labels.len();
            let mut all = labels;
            for (k, v) in &self.config.constant_labels {
                if !all[..user_len].iter().any(|l| l.key() == k) {
                    all.push(Label::new(k.clone(), v.clone()));
                }
            }
            let series = Arc::new(Series::new(
                all,
                user_len,
                self.new_cell(family),
                self.config.trace_context,
                false,
                None,
            ));
            st.by_hash.entry(hash).or_default().push(series.clone());
            st.len += 1;
            series
        };
        self.init_otel_series(family, &series);
        series
    }

    fn overflow_series(&self, family: &Arc<Family>) -> Arc<Series> {
        let series = family.overflow.get_or_init(|| {
            // The overflow counter of the overflow counter itself is not
            // tracked (it cannot recurse: one series per metric name).
            let records = if family.name == OVERFLOW_RECORDS_METRIC {
                None
            } else {
                self.family_or_create(OVERFLOW_RECORDS_METRIC, Kind::Counter)
                    .map(|f| {
                        self.series_in(&f, vec![Label::new("metric.name", family.name.clone())])
                    })
            };
            Arc::new(Series::new(
                vec![Label::new(OVERFLOW_LABEL, "true")],
                1,
                self.new_cell(family),
                self.config.trace_context,
                true,
                records,
            ))
        });
        self.init_otel_series(family, series);
        series.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricsConfig;

    #[test]
    fn fast_path_never_caches_overflow_keys() {
        let reg = Registry::new(Arc::new(MetricsConfig::new().cardinality_limit(10)));
        for i in 0..1000 {
            let key = Key::from_parts("m", vec![Label::new("id", i.to_string())]);
            let s = reg.series(Kind::Counter, &key).unwrap();
            assert_eq!(s.is_overflow(), i >= 10);
            // Same key again: served (from the fast path) with the same series.
            assert!(Arc::ptr_eq(&s, &reg.series(Kind::Counter, &key).unwrap()));
        }
        assert_eq!(read(&reg.fast[Kind::Counter as usize]).len(), 10);
        assert_eq!(reg.family("m").unwrap().series_count(), 11);
        // Another label order maps to the same series and gets its own fast entry.
        let a = Key::from_parts("n", vec![Label::new("a", "1"), Label::new("b", "2")]);
        let b = Key::from_parts("n", vec![Label::new("b", "2"), Label::new("a", "1")]);
        let sa = reg.series(Kind::Gauge, &a).unwrap();
        let sb = reg.series(Kind::Gauge, &b).unwrap();
        assert!(Arc::ptr_eq(&sa, &sb));
        assert_eq!(reg.family("n").unwrap().series_count(), 1);
        // A repeated label key keeps its last value.
        let dup = Key::from_parts("d", vec![Label::new("a", "1"), Label::new("a", "2")]);
        let s = reg.series(Kind::Counter, &dup).unwrap();
        assert_eq!(s.prom_labels(), "a=\"2\"");
        // A conflicting kind is refused even though the key is cached.
        assert!(reg.series(Kind::Counter, &a).is_none());
    }
}
