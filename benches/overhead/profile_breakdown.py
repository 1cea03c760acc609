#!/usr/bin/env python3
"""Groups `perf script -F comm,ip,sym` samples of a server into request-path
components (profile.sh calls it).

    profile_breakdown.py SCRIPT.txt [cpu_us_per_request]

Each sample goes to the first rule (in order) whose condition matches its call
stack; the table gives the share of all samples and, when the server's CPU
time per request during the recording is given, that share in µs per request
(perf may lose samples under load, so shares are used, not sample counts).
"""
import collections
import sys


def has(stack, *needles):
    return any(n in f for f in stack for n in needles)

# Inside the access-log event the layers' generic frames name each other's
# types, so the event is split by the leaf-most frame that belongs to one of them.
ACCESS_LOG_PARTS = [
    ("json", lambda f: any(x in f for x in ("fmt_layer", "JsonEscaper", "telemetry_init::logs::json",
                                            "NonBlocking", "tracing_appender"))),
    ("otlp", lambda f: f.startswith(("<opentelemetry_appender_tracing", "opentelemetry_appender_tracing"))
             or any(x in f for x in ("opentelemetry_sdk::logs", "QueueLogProcessor", "SdkLogger", "LogRecord"))),
    ("other", lambda f: any(x in f for x in ("EnvFilter", "filter::env", "Registry", "sharded_slab",
                                             "span_data", "CorrelationLayer", "correlation"))),
]

def access_log_part(stack):
    for f in stack:
        for label, pred in ACCESS_LOG_PARTS:
            if pred(f):
                return label
    return "other"

# (label, predicate(comm, stack)); the first match wins.
RULES = [
    # Background threads of telemetry-init (off the request path, same core).
    ("bg: OTLP export runtime (prost encoding, tonic/h2 client, syscalls)",
     lambda c, s: c.startswith("telemetry-expor")),
    ("bg: span batch thread (SpanData -> OTLP proto structs, queue)",
     lambda c, s: c.startswith("telemetry-trace")),
    ("bg: log batch thread (log records -> OTLP proto structs, queue)",
     lambda c, s: c.startswith("telemetry-logs")),
    ("bg: stdout writer thread", lambda c, s: c.startswith("telemetry-stdou")),
    ("bg: other threads", lambda c, s: not c.startswith("tokio-rt-worker")),
    # The request worker.
    ("access log: JSON line (fmt layer, escaping, hand-off to the writer)",
     lambda c, s: has(s, "access_log") and access_log_part(s) == "json"),
    ("access log: OTLP log record (appender bridge, attributes, queue send)",
     lambda c, s: has(s, "access_log") and access_log_part(s) == "otlp"),
    ("access log: dispatch, filters, correlation ids",
     lambda c, s: has(s, "access_log")),
    ("span end: close, OTel layer on_close -> SpanData -> queue",
     lambda c, s: has(s, "try_close", "drop_in_place<tracing::span::Span>", "on_close", "SpanProcessor")),
    ("span start: Span::new (registry slot, OTel on_new_span, sampler, ids)",
     lambda c, s: has(s, "Span::new", "Span::make_with", "new_span", "Span::new_root", "Span::child_of")),
    ("span attributes: Span::record",
     lambda c, s: has(s, "record_all", "Span::record", "on_record")),
    ("span enter/exit",
     lambda c, s: has(s, "do_enter", "do_exit", "on_enter", "on_exit", "Span::enter", "Instrumented")),
    ("metrics: RED histogram, counters, active gauge",
     lambda c, s: has(s, "telemetry_init_metrics", "metrics::")),
    ("propagation: W3C extract", lambda c, s: has(s, "telemetry_init_propagation")),
    ("request id", lambda c, s: has(s, "request_id", "RequestId", "uuid")),
    ("telemetry-init middleware: rest (attributes, clocks, glue)",
     lambda c, s: has(s, "telemetry_init")),
    ("socket write of the response (writev, loopback delivery, waking wrk)",
     lambda c, s: has(s, "writev", "Buffered<T,B>::poll_flush")),
    ("socket read (recv syscall)",
     lambda c, s: has(s, "sock_read_iter", "tcp_recvmsg", "sys_recvfrom", "ksys_read", "__libc_recv", "__GI___libc_read")),
    ("epoll, parking, scheduler wake-ups",
     lambda c, s: has(s, "epoll_wait", "ep_poll", "Parker", "park_internal", "park_timeout", "::park", "futex")),
    ("hyper HTTP/1 parsing and encoding",
     lambda c, s: has(s, "hyper::proto::h1::role", "httparse", "Buffered<T,B>::parse", "encode_headers", "Server as hyper::proto::h1::Http1Transaction")),
    ("axum routing and handler", lambda c, s: has(s, "axum::routing", "matchit", "overhead_bench")),
    ("hyper / axum / tokio: rest", lambda c, s: True),
]

def samples(path):
    comm, stack = None, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                if comm is not None:
                    yield comm, stack
                comm, stack = None, []
            elif line[0] not in " \t":
                if comm is not None:
                    yield comm, stack
                comm, stack = line.strip(), []
            else:
                parts = line.strip().split(None, 1)
                stack.append(parts[1] if len(parts) > 1 else "")
    if comm is not None:
        yield comm, stack

def main():
    counts = collections.Counter()
    total = 0
    for comm, stack in samples(sys.argv[1]):
        total += 1
        for label, pred in RULES:
            if pred(comm, stack):
                counts[label] += 1
                break
    cpu = float(sys.argv[2]) if len(sys.argv) > 2 else None
    w = max(len(l) for l, _ in RULES)
    head = f"| {'component'.ljust(w)} | share |" + (" µs/req |" if cpu else "")
    print(head)
    print("|" + "-" * (w + 2) + "|-------|" + ("--------|" if cpu else ""))
    for label, _ in RULES:
        n = counts[label]
        if not n:
            continue
        row = f"| {label.ljust(w)} | {100.0 * n / total:4.1f}% |"
        if cpu:
            row += f" {cpu * n / total:6.2f} |"
        print(row)
    tail = f"| {'total'.ljust(w)} | 100%  |"
    if cpu:
        tail += f" {cpu:6.2f} |"
    print(tail)
    print(f"\n{total} samples")

if __name__ == "__main__":
    main()
