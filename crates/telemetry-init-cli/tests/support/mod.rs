//! Shared helpers of the `smoke` tests: the CLI, the demo and broken-service
//! binaries (built on first use), and report parsing.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The `telemetry-init` binary under test.
pub(crate) fn cli() -> &'static str {
    env!("CARGO_BIN_EXE_telemetry-init")
}

/// The target directory's profile dir (where `telemetry-init` lives).
fn bin_dir() -> PathBuf {
    PathBuf::from(cli())
        .parent()
        .expect("binary has a parent dir")
        .to_path_buf()
}

static BUILD: Mutex<()> = Mutex::new(());

fn cargo_build(args: &[&str]) {
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build {args:?} failed");
}

/// The demo binary, built (`cargo build -p demo`) once per test process so
/// it is never stale.
pub(crate) fn demo() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            cargo_build(&["-p", "demo"]);
            let p = bin_dir().join("demo");
            assert!(
                p.exists(),
                "{} missing after cargo build -p demo",
                p.display()
            );
            p
        })
        .clone()
}

/// The `broken-service` example, built once per test process.
pub(crate) fn broken_service() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            cargo_build(&["-p", "telemetry-init-cli", "--example", "broken-service"]);
            let p = bin_dir().join("examples").join("broken-service");
            assert!(p.exists(), "{} missing after cargo build", p.display());
            p
        })
        .clone()
}

/// Runs the CLI with `args` and `env`; returns its output.
pub(crate) fn run_cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(cli());
    cmd.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run telemetry-init")
}

/// The parsed `--json` report of a run, with the exit code.
pub(crate) struct Run {
    /// Exit code.
    pub code: i32,
    /// The JSON report.
    pub report: serde_json::Value,
    /// stderr, for failure messages.
    pub stderr: String,
}

/// Runs the CLI with `--json` already among `args` and parses the report.
pub(crate) fn run_json(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = run_cli(args, env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("report is not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        report,
        stderr,
    }
}

impl Run {
    /// The check whose name starts with `prefix`.
    pub(crate) fn check(&self, prefix: &str) -> &serde_json::Value {
        self.report["checks"]
            .as_array()
            .expect("checks array")
            .iter()
            .find(|c| c["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
            .unwrap_or_else(|| panic!("no check named `{prefix}…` in {:#}", self.report))
    }

    /// The status (`pass`/`fail`/`skip`) of the check named `prefix…`.
    pub(crate) fn status(&self, prefix: &str) -> &str {
        self.check(prefix)["status"].as_str().unwrap_or("")
    }

    /// All problems of the check named `prefix…`, joined by newlines.
    pub(crate) fn problems(&self, prefix: &str) -> String {
        self.check(prefix)["problems"]
            .as_array()
            .map(|p| {
                p.iter()
                    .filter_map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }

    /// Names of the failed checks.
    pub(crate) fn failed(&self) -> Vec<String> {
        self.report["checks"]
            .as_array()
            .expect("checks array")
            .iter()
            .filter(|c| c["status"] == "fail")
            .map(|c| c["name"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

/// A child process killed on drop.
pub(crate) struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the demo on an ephemeral port (no embedded receiver, nothing
/// exported) and returns it with its base URL.
pub(crate) fn start_demo() -> (Proc, String) {
    let mut child = Command::new(demo())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("DEMO_EMBEDDED_RECEIVER", "false")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn demo");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(l) = v["listen"].as_str()
            {
                let _ = tx.send(l.to_owned());
            }
        }
    });
    let proc = Proc(child);
    let listen = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the demo logs its listen address");
    (proc, format!("http://{listen}"))
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `url` until it answers 2xx or `timeout` passes.
pub(crate) fn wait_http(url: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let hp = url.trim_start_matches("http://");
    let (authority, path) = hp.split_once('/').unwrap_or((hp, ""));
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(authority) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let req = format!("GET /{path} HTTP/1.0\r\nHost: {authority}\r\n\r\n");
            let mut buf = String::new();
            if s.write_all(req.as_bytes()).is_ok() && s.read_to_string(&mut buf).is_ok() {
                let ok = buf
                    .split_whitespace()
                    .nth(1)
                    .is_some_and(|c| c.starts_with('2'));
                if ok {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}
