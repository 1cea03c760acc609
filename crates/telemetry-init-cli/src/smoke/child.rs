//! The service under test as a child process: spawned with its environment,
//! stdout and stderr captured line by line (with arrival time), its address
//! discovered from a JSON `"listen"` field, stopped with SIGTERM.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// One captured output line.
#[derive(Debug, Clone)]
pub(super) struct Line {
    /// The text, without the newline.
    pub text: String,
    /// When the smoke test read it.
    pub at: SystemTime,
}

type Lines = Arc<Mutex<Vec<Line>>>;

/// A running service.
#[derive(Debug)]
pub(super) struct Service {
    child: Child,
    stdout: Lines,
    stderr: Lines,
    pumps: Vec<JoinHandle<()>>,
}

/// Variables that could send the child's telemetry somewhere other than the
/// smoke receiver; removed from its environment.
const CONFLICTING_ENV: &[&str] = &[
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
];

fn pump(stream: impl AsyncRead + Unpin + Send + 'static, into: Lines) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(text)) = lines.next_line().await {
            if let Ok(mut v) = into.lock() {
                v.push(Line {
                    text,
                    at: SystemTime::now(),
                });
            }
        }
    })
}

impl Service {
    /// Spawns `command` (program and arguments) with `env` added to the
    /// inherited environment (minus [`CONFLICTING_ENV`]).
    pub(super) fn spawn(command: &[String], env: &[(String, String)]) -> Result<Service, String> {
        let (program, args) = command
            .split_first()
            .ok_or("no service command given (after `--`)")?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for k in CONFLICTING_ENV {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", command.join(" ")))?;
        let stdout = Lines::default();
        let stderr = Lines::default();
        let mut pumps = Vec::new();
        if let Some(out) = child.stdout.take() {
            pumps.push(pump(out, stdout.clone()));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(pump(err, stderr.clone()));
        }
        Ok(Service {
            child,
            stdout,
            stderr,
            pumps,
        })
    }

    /// The stdout lines so far.
    pub(super) fn stdout(&self) -> Vec<Line> {
        self.stdout.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The stderr lines so far.
    pub(super) fn stderr(&self) -> Vec<Line> {
        self.stderr.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The exit status, if the process has exited.
    pub(super) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until a stdout JSON line has a string `"listen"` field
    /// (`ip:port`), and returns the base URL (`0.0.0.0`/`[::]` become
    /// loopback). Errors if the process exits or `timeout` passes.
    pub(super) async fn discover(&mut self, timeout: Duration) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(listen) = self.stdout().iter().find_map(|l| listen_of(&l.text)) {
                return Ok(base_url(&listen));
            }
            if let Some(status) = self.exited() {
                return Err(format!(
                    "the service exited ({status}) before logging a JSON line with a `listen` field"
                ));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "no stdout JSON line with a `listen` field (e.g. {{\"message\":\"listening\",\"listen\":\"127.0.0.1:8080\"}}) within {timeout:?}; pass --target URL if the service does not log its address"
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit (then kills it).
    /// Returns the exit code, or an error saying what happened.
    pub(super) async fn terminate(&mut self, timeout: Duration) -> Result<i32, String> {
        if let Some(status) = self.exited() {
            return Err(format!(
                "the service had already exited ({status}) before SIGTERM"
            ));
        }
        if let Some(pid) = self.child.id() {
            #[cfg(unix)]
            #[allow(unsafe_code, reason = "libc::kill is the only way to send SIGTERM")]
            // SAFETY: `kill` has no memory-safety preconditions; `pid` is our own child.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
            #[cfg(not(unix))]
            let _ = pid;
        }
        let outcome = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => match status.code() {
                Some(code) => Ok(code),
                None => Err(format!(
                    "the service ended on a signal ({status}) after SIGTERM"
                )),
            },
            Ok(Err(e)) => Err(format!("cannot wait for the service: {e}")),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(format!(
                    "the service did not exit within {timeout:?} after SIGTERM (killed)"
                ))
            }
        };
        // Let the pumps read what is left in the pipes.
        for p in self.pumps.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), p).await;
        }
        outcome
    }

    /// Kills the process if it still runs.
    pub(super) async fn kill(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill().await;
        }
    }
}

/// The `listen` field of a JSON line, if it has one.
pub(super) fn listen_of(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    let l = v.get("listen")?.as_str()?;
    (!l.is_empty()).then(|| l.to_owned())
}

/// `http://ADDR` with unspecified addresses replaced by loopback.
pub(super) fn base_url(listen: &str) -> String {
    let addr = listen
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let addr = if let Some(port) = addr.strip_prefix("0.0.0.0:") {
        format!("127.0.0.1:{port}")
    } else if let Some(port) = addr.strip_prefix("[::]:") {
        format!("[::1]:{port}")
    } else {
        addr
    };
    format!("http://{addr}")
}

/// `host:port` of an `http://host:port/…` URL (port 80 when absent).
pub(super) fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            listen_of(r#"{"message":"demo listening","listen":"127.0.0.1:4000"}"#).as_deref(),
            Some("127.0.0.1:4000")
        );
        assert_eq!(listen_of("listening on 127.0.0.1:4000"), None);
        assert_eq!(listen_of(r#"{"listen":3}"#), None);
        assert_eq!(base_url("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(base_url("[::]:8080"), "http://[::1]:8080");
        assert_eq!(host_port("http://127.0.0.1:81/x"), "127.0.0.1:81");
        assert_eq!(host_port("http://demo"), "demo:80");
        assert_eq!(host_port("http://[::1]:9"), "[::1]:9");
    }
}
