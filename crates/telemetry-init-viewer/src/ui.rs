//! The browser UI: static assets compiled into the binary and served by the
//! same process as the query API.
//!
//! ```
//! # fn demo(api: axum::Router) -> axum::Router {
//! // `api` is the query API (`/api/...`); the UI adds `/`, `/assets/*` and the
//! // page routes the browser navigates to (`/traces/{id}`, `/logs`, ...).
//! let app = api.merge(telemetry_init_viewer::ui::router());
//! # app }
//! ```
//!
//! Nothing is fetched from the network at run time: the HTML, script, style
//! sheet and icon are `include_str!`/`include_bytes!`'d here, and the Content
//! Security Policy sent with every page only allows same-origin resources (so
//! a span name or log body holding markup can neither load nor run anything,
//! even if a rendering bug ever put it into the DOM as HTML).
//!
//! Every page is the same single-page application: the page routes all answer
//! `index.html` and the script renders from `location`, so any view (a trace,
//! a filtered log search, an SLO) is a URL that can be shared or reloaded.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");
const FAVICON_SVG: &str = include_str!("../ui/favicon.svg");

/// Same-origin only: the script, style sheet and API calls (including the
/// `/api/live` event stream) come from this server, images may be inline SVG.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// The page routes of the single-page application; each serves `index.html`.
pub const PAGE_ROUTES: &[&str] = &[
    "/",
    "/services",
    "/traces",
    "/traces/{trace_id}",
    "/logs",
    "/metrics",
    "/slo",
];

/// The UI's routes: the page routes ([`PAGE_ROUTES`]) and `/assets/*`.
///
/// Generic over the state so it merges into the API router whatever its state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new();
    for route in PAGE_ROUTES {
        router = router.route(route, get(index));
    }
    router
        .route("/assets/app.js", get(app_js))
        .route("/assets/app.css", get(app_css))
        .route("/assets/favicon.svg", get(favicon))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // Assets change with the binary: revalidate instead of caching
            // a stale script after an upgrade.
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    let mut response = asset("text/html; charset=utf-8", INDEX_HTML);
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

async fn favicon() -> Response {
    asset("image/svg+xml", FAVICON_SVG)
}
