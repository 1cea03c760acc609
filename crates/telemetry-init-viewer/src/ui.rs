//! The browser UI (owned by the UI work; this placeholder serves a page
//! linking the JSON API until the real assets land).

use axum::Router;
use axum::response::Html;
use axum::routing::get;

/// The UI routes (`/`, `/assets/*`, the SPA routes).
pub fn router() -> Router {
    Router::new().route(
        "/",
        get(|| async {
            Html(
                "<!doctype html><title>telemetry-init viewer</title>\
                 <h1>telemetry-init viewer</h1><ul>\
                 <li><a href=\"/api/services\">/api/services</a></li>\
                 <li><a href=\"/api/traces\">/api/traces</a></li>\
                 <li><a href=\"/api/logs\">/api/logs</a></li>\
                 <li><a href=\"/api/metrics\">/api/metrics</a></li>\
                 <li><a href=\"/api/slo\">/api/slo</a></li></ul>",
            )
        }),
    )
}
