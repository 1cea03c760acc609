#!/usr/bin/env python3
"""Where the resident memory of each variant goes (issue 13, "Memory").

    python3 benches/overhead/rss.py [seconds=10]

Starts the discarding OTLP sink and, one after the other, the bare,
tracelayer and telemetry-init servers of this workspace (release binaries:
run benches/overhead/run.sh or `cargo build --release --bins` first), each
pinned to CPU 0 like the benchmark. Reads /proc/PID/smaps twice: idle (2 s
after start, exporting to the sink, before any request) and right after
`wrk -t1 -c32 -d<seconds>s` on /users/42 (on CPU 1). Prints resident KiB per
kind of mapping: the binary's code (r-x), its read-only data, its writable
data, the main heap ([heap]), other anonymous memory (thread stacks and glibc's
per-thread malloc arenas, mmap'd buffers), shared libraries; plus the thread
count and VmHWM (peak). Everything listens on 127.0.0.1; every step is
time-bounded.
"""

import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(HERE, "target", "release")
SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
if not 1 <= SECS <= 120:
    sys.exit("seconds must be 1..120")

ENV = {"PATH": "/usr/bin:/bin", "LISTEN_ADDR": "127.0.0.1:0", "RUST_LOG": "info"}


def wait_line(path, pattern, timeout=15):
    deadline = time.time() + timeout
    rx = re.compile(pattern)
    while time.time() < deadline:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    m = rx.search(line)
                    if m:
                        return m.group(0)
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    sys.exit(f"timed out waiting for /{pattern}/ in {path}")


def smaps(pid, exe):
    """Resident KiB per kind of mapping."""
    kinds = {}
    current = None
    with open(f"/proc/{pid}/smaps", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                perms = fields[1]
                name = fields[5] if len(fields) > 5 else ""
                if name == exe or os.path.basename(name) == os.path.basename(exe):
                    current = {"r-xp": "binary code", "r--p": "binary rodata"}.get(
                        perms, "binary data (rw)")
                elif name == "[heap]":
                    current = "main heap"
                elif name in ("[stack]",):
                    current = "main stack"
                elif name == "" and perms.startswith("rw"):
                    current = "anonymous (thread stacks, malloc arenas, buffers)"
                elif name.startswith("/"):
                    current = "shared libraries"
                else:
                    current = "other"
            elif fields[0] == "Rss:" and current:
                kinds[current] = kinds.get(current, 0) + int(fields[1])
    return kinds


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    return out


def measure(variant, sink):
    exe = os.path.join(BIN, "ours" if variant == "telemetry-init" else variant)
    env = dict(ENV)
    if variant == "telemetry-init":
        env.update(OTEL_SERVICE_NAME="telemetry-init", OTEL_TRACES_SAMPLER="always_on",
                   OTEL_EXPORTER_OTLP_ENDPOINT=sink)
    err = f"/tmp/rss.{variant}.err"
    with open(err, "w") as e, open(os.devnull, "w") as out:
        p = subprocess.Popen(["taskset", "-c", "0", exe], env=env, stdout=out, stderr=e)
    try:
        addr = wait_line(err, r"127\.0\.0\.1:[0-9]+")
        time.sleep(2)
        idle = (smaps(p.pid, exe), status(p.pid))
        subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{SECS}s",
                        f"http://{addr}/users/42"], check=True, capture_output=True,
                       timeout=SECS + 30)
        loaded = (smaps(p.pid, exe), status(p.pid))
    finally:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    return idle, loaded


def main():
    for tool in ("wrk", "taskset"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit(f"{tool} is missing")
    sink_out = "/tmp/rss.sink.out"
    with open(sink_out, "w") as o, open(os.devnull, "w") as e:
        sink = subprocess.Popen(["taskset", "-c", "1", os.path.join(BIN, "sink")], stdout=o, stderr=e)
    try:
        url = wait_line(sink_out, r"^http://127\.0\.0\.1:[0-9]+$")
        results = {v: measure(v, url) for v in ("bare", "tracelayer", "telemetry-init")}
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    kinds = sorted({k for r in results.values() for s in r for k in s[0]})
    for phase, i in (("idle (2 s after start)", 0), (f"after wrk -c32 -d{SECS}s", 1)):
        print(f"\n{phase}: resident KiB")
        names = list(results)
        print("| kind | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for k in kinds:
            print(f"| {k} | " + " | ".join(str(results[v][i][0].get(k, 0)) for v in names) + " |")
        for key in ("VmRSS", "VmHWM", "Threads"):
            print(f"| {key} | " + " | ".join(str(results[v][i][1].get(key, 0)) for v in names) + " |")


if __name__ == "__main__":
    main()
