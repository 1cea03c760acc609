//! `/api/slo`: SLO status computed from stored SERVER spans, over the same
//! windows and with the same burn-rate conditions as the alert rules
//! [`telemetry_init_slo::generate`] writes (the four multiwindow
//! multi-burn-rate alerts of [`BURN_RATE_ALERTS`]).
//!
//! The SLI follows the rules' definition: availability counts responses
//! with an HTTP status ≥ 500 as bad; latency counts requests slower than the
//! objective's threshold as bad. Both read SERVER spans of the service
//! (and of the objective's route, when it has one).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use telemetry_init_slo::{BURN_RATE_ALERTS, Kind, Objective, SLI_WINDOWS, SloSpec};

use super::{ApiError, ApiState};
use crate::store::query::{Range, now_us};

const MINUTE_US: i64 = 60_000_000;

/// Per-minute request counts of one objective, prefix-summed so that any
/// window's error ratio is two subtractions.
struct Minutes {
    first: i64,
    /// `total[i]`, `bad[i]`: requests in minutes `< first + i`.
    total: Vec<u64>,
    bad: Vec<u64>,
}

impl Minutes {
    fn load(
        conn: &Connection,
        service: &str,
        o: &Objective,
        from_us: i64,
        to_us: i64,
    ) -> rusqlite::Result<Self> {
        let threshold_us = o
            .threshold
            .map(|t| (t * 1e6).round() as i64)
            .unwrap_or(i64::MAX);
        let latency = o.kind == Kind::Latency;
        let mut stmt = conn.prepare_cached(
            "SELECT s.start_us / 60000000, count(*),
                    sum(CASE WHEN ?5 THEN s.duration_us > ?6 ELSE coalesce(s.http_status >= 500, 0) END)
             FROM spans s INDEXED BY spans_server JOIN resources r ON r.id = s.resource_id
             WHERE s.kind = 2 AND s.start_us >= ?1 AND s.start_us < ?2 AND r.service = ?3
               AND (?4 IS NULL OR s.route = ?4)
             GROUP BY 1",
        )?;
        let first = from_us.div_euclid(MINUTE_US);
        let last = to_us.div_euclid(MINUTE_US);
        let n = (last - first + 1).clamp(1, 60 * 24 * 400) as usize;
        let mut total = vec![0u64; n + 1];
        let mut bad = vec![0u64; n + 1];
        let mut rows = stmt.query(params![
            from_us,
            to_us,
            service,
            o.route,
            latency,
            threshold_us
        ])?;
        while let Some(r) = rows.next()? {
            let minute: i64 = r.get(0)?;
            let i = (minute - first).clamp(0, n as i64 - 1) as usize;
            total[i + 1] += r.get::<_, i64>(1)?.max(0) as u64;
            bad[i + 1] += r.get::<_, i64>(2)?.max(0) as u64;
        }
        for i in 1..=n {
            total[i] += total[i - 1];
            bad[i] += bad[i - 1];
        }
        Ok(Minutes { first, total, bad })
    }

    /// Requests and bad requests in the `window_s` seconds ending at `at_us`.
    fn window(&self, at_us: i64, window_s: u64) -> (u64, u64) {
        let n = self.total.len() - 1;
        let idx = |t: i64| ((t.div_euclid(MINUTE_US) - self.first).clamp(0, n as i64)) as usize;
        let end = idx(at_us) + 1;
        let end = end.min(n);
        let start = idx(at_us - window_s as i64 * 1_000_000 + 1).min(end);
        (
            self.total[end] - self.total[start],
            self.bad[end] - self.bad[start],
        )
    }

    fn burn_rate(&self, at_us: i64, window_s: u64, budget: f64) -> Option<f64> {
        let (total, bad) = self.window(at_us, window_s);
        (total > 0 && budget > 0.0).then(|| bad as f64 / total as f64 / budget)
    }
}

/// The SLI of an objective over its period.
#[derive(Debug, Serialize)]
pub struct Sli {
    /// `availability` or `latency`.
    pub kind: Kind,
    /// The route the objective is restricted to.
    pub route: Option<String>,
    /// Latency threshold, seconds.
    pub threshold_s: Option<f64>,
    /// The SLO period (e.g. `30d`).
    pub period: String,
    /// Requests in the period (as far as retention keeps them).
    pub requests: u64,
    /// Bad requests in the period.
    pub bad: u64,
    /// `1 - bad/requests`, `None` without requests.
    pub good_ratio: Option<f64>,
    /// `1 - target/100`.
    pub error_budget: f64,
    /// Share of the period's error budget left (negative when overspent).
    pub budget_remaining: Option<f64>,
    /// Error ratio per SLI window of the generated recording rules.
    pub error_ratios: Vec<WindowRatio>,
}

/// The error ratio over one window.
#[derive(Debug, Serialize)]
pub struct WindowRatio {
    /// Window (`5m` … `3d`).
    pub window: String,
    /// Bad / all, `None` without requests.
    pub error_ratio: Option<f64>,
}

/// One burn-rate alert condition, evaluated now.
#[derive(Debug, Serialize)]
pub struct AlertWindow {
    /// `SLOErrorBudgetBurnPage` or `SLOErrorBudgetBurnTicket`.
    pub alert: &'static str,
    /// `page` or `ticket`.
    pub severity: &'static str,
    /// Long window.
    pub long: String,
    /// Short window.
    pub short: String,
    /// The burn rate both windows must exceed.
    pub burn_rate_factor: f64,
    /// Burn rate over the long window (`None` without requests).
    pub burn_rate_long: Option<f64>,
    /// Burn rate over the short window.
    pub burn_rate_short: Option<f64>,
    /// Whether the alert would fire now.
    pub firing: bool,
}

/// Status of one objective.
#[derive(Debug, Serialize)]
pub struct SloStatus {
    /// Service.
    pub service: String,
    /// Objective name.
    pub objective: String,
    /// Description.
    pub description: Option<String>,
    /// Target, percent.
    pub target: f64,
    /// The SLI.
    pub sli: Sli,
    /// The burn-rate alerts.
    pub windows: Vec<AlertWindow>,
}

fn status_of(
    conn: &Connection,
    service: &str,
    o: &Objective,
    now: i64,
) -> rusqlite::Result<SloStatus> {
    let period_s = o.window.seconds();
    let longest = SLI_WINDOWS
        .iter()
        .map(|w| w.seconds())
        .max()
        .unwrap_or(0)
        .max(period_s);
    let from = now - longest as i64 * 1_000_000;
    let m = Minutes::load(conn, service, o, from, now + 1)?;
    let budget = o.error_budget();
    let (requests, bad) = m.window(now, period_s);
    let good_ratio = (requests > 0).then(|| 1.0 - bad as f64 / requests as f64);
    let windows = BURN_RATE_ALERTS
        .iter()
        .map(|a| {
            let factor = a.factor(o.window);
            let long = m.burn_rate(now, a.long.seconds(), budget);
            let short = m.burn_rate(now, a.short.seconds(), budget);
            AlertWindow {
                alert: a.severity.alert_name(),
                severity: a.severity.label(),
                long: a.long.to_string(),
                short: a.short.to_string(),
                burn_rate_factor: factor,
                burn_rate_long: long,
                burn_rate_short: short,
                firing: long.is_some_and(|l| l > factor) && short.is_some_and(|s| s > factor),
            }
        })
        .collect();
    Ok(SloStatus {
        service: service.to_owned(),
        objective: o.name.clone(),
        description: o.description.clone(),
        target: o.target,
        sli: Sli {
            kind: o.kind,
            route: o.route.clone(),
            threshold_s: o.threshold,
            period: o.window.to_string(),
            requests,
            bad,
            good_ratio,
            error_budget: budget,
            budget_remaining: good_ratio.map(|g| 1.0 - (1.0 - g) / budget),
            error_ratios: SLI_WINDOWS
                .iter()
                .map(|w| {
                    let (t, b) = m.window(now, w.seconds());
                    WindowRatio {
                        window: w.to_string(),
                        error_ratio: (t > 0).then(|| b as f64 / t as f64),
                    }
                })
                .collect(),
        },
        windows,
    })
}

/// Status of every objective of `specs` at `now` (unix µs).
pub fn slo_status(
    conn: &Connection,
    specs: &[SloSpec],
    now: i64,
) -> rusqlite::Result<Vec<SloStatus>> {
    let mut out = Vec::new();
    for spec in specs {
        for service in &spec.services {
            for o in &service.objectives {
                out.push(status_of(conn, &service.name, o, now)?);
            }
        }
    }
    Ok(out)
}

pub(crate) async fn status(
    State(s): State<ApiState>,
) -> Result<axum::Json<Vec<SloStatus>>, ApiError> {
    let specs = s.slo.clone();
    Ok(axum::Json(
        s.store
            .read(move |c| slo_status(c, &specs, now_us()))
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SeriesParams {
    from_us: Option<i64>,
    to_us: Option<i64>,
}

/// One point of a burn-rate series.
#[derive(Debug, Serialize)]
pub struct BurnPoint {
    /// Time, µs.
    pub time_us: i64,
    /// Burn rate over the long window ending then.
    pub burn_rate_long: Option<f64>,
    /// Burn rate over the short window ending then.
    pub burn_rate_short: Option<f64>,
}

/// The burn-rate series of one alert condition.
#[derive(Debug, Serialize)]
pub struct BurnSeries {
    /// Alert name.
    pub alert: &'static str,
    /// `page` or `ticket`.
    pub severity: &'static str,
    /// Long window.
    pub long: String,
    /// Short window.
    pub short: String,
    /// Threshold factor.
    pub burn_rate_factor: f64,
    /// Points, oldest first.
    pub points: Vec<BurnPoint>,
}

/// Burn-rate series of one objective.
#[derive(Debug, Serialize)]
pub struct SeriesResponse {
    /// Service.
    pub service: String,
    /// Objective.
    pub objective: String,
    /// Distance between points, µs.
    pub step_us: i64,
    /// One series per alert condition.
    pub windows: Vec<BurnSeries>,
}

/// Points per series.
const POINTS: i64 = 120;

pub(crate) async fn series(
    State(s): State<ApiState>,
    Path((service, objective)): Path<(String, String)>,
    q: Result<Query<SeriesParams>, QueryRejection>,
) -> Result<axum::Json<SeriesResponse>, ApiError> {
    let Query(q) = q?;
    let range = Range::from_options(q.from_us, q.to_us);
    if range.to_us <= range.from_us {
        return Err(ApiError::bad_request("from_us must be before to_us"));
    }
    let o = s
        .slo
        .iter()
        .flat_map(|spec| spec.services.iter())
        .filter(|svc| svc.name == service)
        .flat_map(|svc| svc.objectives.iter())
        .find(|o| o.name == objective)
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no objective {objective:?} for service {service:?}"
            ))
        })?;
    let longest = BURN_RATE_ALERTS
        .iter()
        .map(|a| a.long.seconds())
        .max()
        .unwrap_or(0) as i64;
    let step = ((range.to_us - range.from_us) / POINTS).max(MINUTE_US);
    let svc = service.clone();
    let m = s
        .store
        .read(move |c| {
            Minutes::load(
                c,
                &svc,
                &o,
                range.from_us.saturating_sub(longest * 1_000_000),
                range.to_us,
            )
            .map(|m| (m, o))
        })
        .await?;
    let (m, o) = m;
    let budget = o.error_budget();
    let windows = BURN_RATE_ALERTS
        .iter()
        .map(|a| {
            let mut points = Vec::new();
            let mut t = range.from_us + step;
            while t <= range.to_us {
                points.push(BurnPoint {
                    time_us: t,
                    burn_rate_long: m.burn_rate(t, a.long.seconds(), budget),
                    burn_rate_short: m.burn_rate(t, a.short.seconds(), budget),
                });
                t += step;
            }
            BurnSeries {
                alert: a.severity.alert_name(),
                severity: a.severity.label(),
                long: a.long.to_string(),
                short: a.short.to_string(),
                burn_rate_factor: a.factor(o.window),
                points,
            }
        })
        .collect();
    Ok(axum::Json(SeriesResponse {
        service,
        objective,
        step_us: step,
        windows,
    }))
}
