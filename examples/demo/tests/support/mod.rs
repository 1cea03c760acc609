//! Runs the real `demo` binary as a child process, as users and CI do.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) struct Demo {
    child: Child,
    pub addr: SocketAddr,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn pump(stream: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            into.lock().unwrap().push(line);
        }
    });
}

impl Demo {
    /// Starts the demo on an ephemeral port with `env` (and nothing
    /// inherited that could point it elsewhere).
    pub(crate) fn start(env: &[(&str, &str)]) -> Demo {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LISTEN_ADDR", "127.0.0.1:0")
            // The viewer (UI + SQLite store) only where a test asks for it.
            .env("DEMO_VIEWER", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn demo");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        pump(child.stdout.take().unwrap(), stdout.clone());
        pump(child.stderr.take().unwrap(), stderr.clone());
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            let found = stdout.lock().unwrap().iter().find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                (v["message"] == "demo listening").then(|| v["listen"].as_str()?.parse().ok())?
            });
            if let Some(a) = found {
                break a;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "demo exited early ({status}): {:?} {:?}",
                    stdout.lock().unwrap(),
                    stderr.lock().unwrap()
                );
            }
            assert!(Instant::now() < deadline, "demo did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        };
        Demo {
            child,
            addr,
            stdout,
            stderr,
        }
    }

    /// The demo's process id (for `/proc/<pid>/status`).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends SIGTERM and waits (bounded) for the exit; returns the exit code
    /// and how long the shutdown took.
    pub(crate) fn terminate(&mut self, within: Duration) -> (i32, Duration) {
        let started = Instant::now();
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -TERM failed");
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the pump threads drain the pipes.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code().unwrap_or(-1), started.elapsed());
            }
            if started.elapsed() > within {
                let _ = self.child.kill();
                panic!(
                    "demo did not exit within {within:?} after SIGTERM; stderr: {:?}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub(crate) fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// stdout parsed as JSON; every line must be JSON.
    pub(crate) fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
