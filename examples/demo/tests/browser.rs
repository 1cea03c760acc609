//! The viewer's UI in a real browser: headless Chromium driven over
//! WebDriver (chromedriver), against the demo's embedded viewer.
//!
//! The demo runs as users run it (its embedded default: viewer + receiver
//! behind the relay) on loopback ephemeral ports; one `/chain` request, then
//! the browser checks the trace list, the waterfall (SERVER → CLIENT → SERVER
//! with the log lines each span wrote), the log view's link back to the
//! trace, live updates without a reload, and the SLO page. Screenshots of
//! each page go to `target/viewer-screenshots/` (and to `docs/img/` with
//! `UPDATE_SCREENSHOTS=1`).
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium
//! chromium-driver`; `CHROMIUM` / `CHROMEDRIVER` override the paths). The
//! test fails, it does not skip, when they are missing.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use support::Demo;

/// A chromedriver child process, killed on drop.
struct Driver {
    child: Child,
    base: String,
    profile: TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "telemetry-init-{name}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tool(env: &str, default: &str) -> String {
    let path = std::env::var(env).unwrap_or_else(|_| default.to_owned());
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: the browser test needs Debian's chromium and chromium-driver \
         (apt-get install chromium chromium-driver), or {env}=<path>"
    );
    path
}

/// A minimal W3C WebDriver client over HTTP (one session).
struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Driver,
}

impl Browser {
    async fn start() -> Browser {
        let chromium = tool("CHROMIUM", "/usr/bin/chromium");
        let chromedriver = tool("CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let profile = TempDir::new("chromium-profile");
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {chromedriver}: {e}"));
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            profile,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http
            .get(format!("{}/status", driver.base))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1400,1000",
                    format!("--user-data-dir={}", driver.profile.0.display()),
                ]
            }
        }}});
        let res: Value = http
            .post(format!("{}/session", driver.base))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session JSON");
        let session = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {res}"))
            .to_owned();
        Browser {
            http,
            session,
            driver,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.driver.base, self.session);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res: Value = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        if let Some(err) = res["value"]["error"].as_str() {
            panic!("WebDriver {path}: {err}: {}", res["value"]["message"]);
        }
        res["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn run(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Polls `script` (which returns a value or null) until it is truthy.
    async fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.run(script, args.clone()).await;
            if !(v.is_null() || v == false || v == "" || v == json!([])) {
                return v;
            }
            if Instant::now() > deadline {
                let page = self
                    .run("return document.body.innerText.slice(0, 2000)", json!([]))
                    .await;
                panic!("timed out waiting for {what}; page text: {page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the first element matching `css` through WebDriver (a real
    /// pointer click, not a script).
    async fn click(&self, css: &str) {
        let el = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        let id = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("element id")
            .to_owned();
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn screenshot(&self, name: &str) {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64 screenshot"))
            .expect("valid base64");
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG screenshot");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = root.join("target/viewer-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &bytes).unwrap();
        if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
            std::fs::create_dir_all(root.join("docs/img")).unwrap();
            std::fs::write(root.join(format!("docs/img/{name}.png")), &bytes).unwrap();
        }
    }

    async fn close(self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.driver.base, self.session))
            .send()
            .await;
    }
}

/// Polls the viewer's query API until `check` accepts the answer.
async fn poll_api(url: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(res) = reqwest::get(url).await
            && res.status().is_success()
            && let Ok(v) = res.json::<Value>().await
            && check(&v)
        {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} at {url}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_shows_a_chain_request_in_a_real_browser() {
    let db = TempDir::new("viewer-browser-db");
    let db_path = db.0.join("telemetry.db");
    let demo = Demo::start(&[
        ("DEMO_VIEWER", "true"),
        ("DEMO_VIEWER_ADDR", "127.0.0.1:0"),
        ("DEMO_VIEWER_DB", db_path.to_str().unwrap()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
    ]);
    let ui = demo
        .json_lines()
        .iter()
        .find(|l| l["message"] == "demo listening")
        .and_then(|l| l["viewer_ui"].as_str().map(str::to_owned))
        .expect("the demo logs the viewer's URL");
    let ui = ui.trim_end_matches('/').to_owned();

    // Nothing fetched from the network: the page only references its own assets.
    let html = reqwest::get(format!("{ui}/traces")).await.unwrap();
    let csp = html.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let html = html.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );

    let res = reqwest::get(demo.url("/chain")).await.unwrap();
    assert_eq!(res.status(), 200);

    // The trace as the API has it (the browser must show the same one).
    let list = poll_api(
        &format!("{ui}/api/traces?route=/chain"),
        "the /chain trace",
        |v| v["traces"].as_array().is_some_and(|t| !t.is_empty()),
    )
    .await;
    let trace_id = list["traces"][0]["trace_id"].as_str().unwrap().to_owned();
    poll_api(
        &format!("{ui}/api/traces/{trace_id}"),
        "3 spans and the log lines of the /chain trace",
        |v| {
            v["spans"].as_array().is_some_and(|s| s.len() >= 3)
                && v["logs"].as_array().is_some_and(|l| {
                    ["calling downstream", "saying hello", "downstream answered"]
                        .iter()
                        .all(|m| l.iter().any(|x| x["body"] == *m))
                })
        },
    )
    .await;

    let browser = Browser::start().await;

    // Services overview: RED of the demo's routes.
    browser.goto(&format!("{ui}/")).await;
    browser
        .wait_for(
            "the demo's /chain route in the services overview",
            "return [...document.querySelectorAll('section.service[data-service=demo] td a')].some(a => a.textContent === '/chain')",
            json!([]),
        )
        .await;
    browser.screenshot("viewer-services").await;

    // Trace list: the /chain trace, then a real click on it.
    browser.goto(&format!("{ui}/traces")).await;
    let root = browser
        .wait_for(
            "the /chain trace in the trace list",
            "const r = document.querySelector(`#trace-list tr[data-trace-id=\"${arguments[0]}\"] a`); return r && r.textContent",
            json!([trace_id]),
        )
        .await;
    assert_eq!(root, "GET /chain");
    browser.screenshot("viewer-traces").await;
    browser
        .click(&format!("#trace-list tr[data-trace-id=\"{trace_id}\"] a"))
        .await;

    // Waterfall: SERVER → CLIENT → SERVER, each nested in the previous, with
    // the log lines under the span that wrote them.
    let rows = browser
        .wait_for(
            "the waterfall",
            "if (location.pathname !== '/traces/' + arguments[0]) return null;
             const rows = [...document.querySelectorAll('#waterfall > div')].map(r => ({
               kind: r.dataset.kind || 'LOG',
               span: r.dataset.spanId,
               indent: parseFloat(r.firstElementChild.style.paddingLeft) || 0,
               text: r.innerText }));
             return rows.filter(r => r.kind !== 'LOG').length >= 3 ? rows : null",
            json!([trace_id]),
        )
        .await;
    let rows = rows.as_array().unwrap();
    let spans: Vec<&Value> = rows.iter().filter(|r| r["kind"] != "LOG").collect();
    let kinds: Vec<&str> = spans.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["SERVER", "CLIENT", "SERVER"], "{rows:?}");
    let indents: Vec<f64> = spans
        .iter()
        .map(|r| r["indent"].as_f64().unwrap())
        .collect();
    assert!(
        indents[0] < indents[1] && indents[1] < indents[2],
        "each span nested under the previous: {rows:?}"
    );
    assert!(spans[0]["text"].as_str().unwrap().contains("GET /chain"));
    assert!(spans[2]["text"].as_str().unwrap().contains("GET /hello"));
    let log_under = |message: &str| -> Option<String> {
        rows.iter()
            .find(|r| r["kind"] == "LOG" && r["text"].as_str().unwrap().contains(message))
            .map(|r| r["span"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        log_under("calling downstream").as_deref(),
        spans[0]["span"].as_str(),
        "the /chain log line sits under the /chain SERVER span: {rows:?}"
    );
    assert_eq!(
        log_under("saying hello").as_deref(),
        spans[2]["span"].as_str(),
        "the /hello log line sits under the /hello SERVER span: {rows:?}"
    );
    // Span details open on click and the URL keeps the selection.
    browser
        .click(&format!(
            ".wf-row[data-span-id=\"{}\"]",
            spans[2]["span"].as_str().unwrap()
        ))
        .await;
    browser
        .wait_for(
            "the span details with http.route",
            "const d = document.querySelector('.details'); return d && d.innerText.includes('http.route') && location.search.includes('span=')",
            json!([]),
        )
        .await;
    browser.screenshot("viewer-trace").await;

    // Log view: the trace's lines, and a click back to the trace.
    browser.goto(&format!("{ui}/logs?service=demo")).await;
    browser
        .wait_for(
            "the /chain log lines in the log view",
            "return [...document.querySelectorAll('#log-list tr')].some(r => r.dataset.traceId === arguments[0] && r.innerText.includes('calling downstream'))",
            json!([trace_id]),
        )
        .await;
    // Live tail: a new request's log line appears without a reload.
    browser
        .run("window.__not_reloaded = true; return true", json!([]))
        .await;
    let res = reqwest::get(demo.url("/users/4242")).await.unwrap();
    assert_eq!(res.status(), 200);
    browser
        .wait_for(
            "the new log line pushed to the open log view",
            "return window.__not_reloaded === true && document.querySelector('#log-list').innerText.includes('looking up user')",
            json!([]),
        )
        .await;
    browser.screenshot("viewer-logs").await;
    browser
        .click(&format!(
            "#log-list tr[data-trace-id=\"{trace_id}\"] a.trace-link"
        ))
        .await;
    browser
        .wait_for(
            "the trace page opened from the log view",
            "return location.pathname === '/traces/' + arguments[0] && document.querySelectorAll('.wf-row').length >= 3",
            json!([trace_id]),
        )
        .await;

    // SLO page: the demo's objectives from slo/demo.yaml, with their windows.
    browser.goto(&format!("{ui}/slo")).await;
    let objectives = browser
        .wait_for(
            "the demo's SLOs",
            "const c = [...document.querySelectorAll('#slo-list .slo[data-service=demo]')]; return c.length >= 2 ? c.map(x => x.dataset.objective).sort() : null",
            json!([]),
        )
        .await;
    assert_eq!(objectives, json!(["availability", "users-latency"]));
    let windows = browser
        .run(
            "return document.querySelectorAll('#slo-list .slo[data-objective=availability] tbody tr').length",
            json!([]),
        )
        .await;
    assert!(
        windows.as_u64().unwrap() >= 2,
        "burn-rate windows: {windows}"
    );
    browser.screenshot("viewer-slo").await;

    // Metrics: the demo's request-duration histogram charted.
    browser
        .goto(&format!("{ui}/metrics?name=http.server.request.duration"))
        .await;
    browser
        .wait_for(
            "the request-duration chart",
            "return document.querySelector('#metric-chart svg.chart path.line, #metric-chart svg.chart circle')",
            json!([]),
        )
        .await;
    browser.screenshot("viewer-metrics").await;

    browser.close().await;

    // The relay fed the in-memory receiver too: /debug/telemetry still shows the trace.
    let debug: Value = reqwest::get(demo.url("/debug/telemetry"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        debug.to_string().contains(&trace_id),
        "/debug/telemetry shows the /chain trace too"
    );
    drop(db);
}
