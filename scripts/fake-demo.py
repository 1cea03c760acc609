#!/usr/bin/env python3
"""A stand-in for the demo service that speaks the telemetry-init metric contract.

Used by `scripts/prometheus-e2e.sh --fake` to test the end-to-end harness itself
(Prometheus, recording rules, dashboard queries) without the real demo. It serves the
demo's routes and a Prometheus /metrics page with the contract's series:
http_server_request_duration_seconds_*, http_server_active_requests and the
otel_sdk_* pipeline self-metrics. rpc_server_* is deliberately absent (the demo has no
gRPC), like in the real demo.

Usage: LISTEN_ADDR=127.0.0.1:3000 OTEL_SERVICE_NAME=demo python3 scripts/fake-demo.py
"""
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
SERVICE = os.environ.get("OTEL_SERVICE_NAME", "demo")
LOCK = threading.Lock()
HIST = {}  # (method, route, status, error_type) -> [bucket counts..., sum, count]
ACTIVE = {}  # (method, route) -> n
SDK = {"spans": 0, "logs": 0, "points": 0, "span_fail": 0}


def route_of(path):
    if path in ("/hello", "/error", "/slow", "/healthz", "/chain", "/metrics"):
        return path
    if re.fullmatch(r"/users/[^/]+", path):
        return "/users/{id}"
    return "unmatched"


def observe(method, route, status, seconds):
    error_type = str(status) if status >= 500 else ""
    key = (method, route, str(status), error_type)
    with LOCK:
        h = HIST.setdefault(key, [0] * (len(BUCKETS) + 2))
        for i, b in enumerate(BUCKETS):
            if seconds <= b:
                h[i] += 1
        h[-2] += seconds
        h[-1] += 1
        SDK["spans"] += 1
        SDK["logs"] += 1
        SDK["points"] += 3
        if SDK["spans"] % 50 == 0:
            SDK["span_fail"] += 1


def fmt_le(b):
    return str(float(b)) if b != int(b) else f"{int(b)}"


def metrics_text():
    svc = f'service_name="{SERVICE}"'
    out = ["# TYPE http_server_request_duration_seconds histogram"]
    with LOCK:
        for (method, route, status, error_type), h in sorted(HIST.items()):
            labels = f'{svc},http_request_method="{method}",http_route="{route}",http_response_status_code="{status}"'
            if error_type:
                labels += f',error_type="{error_type}"'
            for i, b in enumerate(BUCKETS):
                out.append(f'http_server_request_duration_seconds_bucket{{{labels},le="{fmt_le(b)}"}} {h[i]}')
            out.append(f'http_server_request_duration_seconds_bucket{{{labels},le="+Inf"}} {h[-1]}')
            out.append(f"http_server_request_duration_seconds_sum{{{labels}}} {h[-2]}")
            out.append(f"http_server_request_duration_seconds_count{{{labels}}} {h[-1]}")
        out.append("# TYPE http_server_active_requests gauge")
        for (method, route), n in sorted(ACTIVE.items()):
            out.append(f'http_server_active_requests{{{svc},http_request_method="{method}",http_route="{route}"}} {n}')
        ok_spans = SDK["spans"] - SDK["span_fail"]
        out += [
            "# TYPE otel_sdk_exporter_span_exported_total counter",
            f'otel_sdk_exporter_span_exported_total{{{svc},otel_component_type="otlp_grpc_span_exporter"}} {ok_spans}',
            f'otel_sdk_exporter_span_exported_total{{{svc},otel_component_type="otlp_grpc_span_exporter",error_type="unavailable"}} {SDK["span_fail"]}',
            "# TYPE otel_sdk_exporter_log_exported_total counter",
            f'otel_sdk_exporter_log_exported_total{{{svc},otel_component_type="otlp_grpc_log_exporter"}} {SDK["logs"]}',
            "# TYPE otel_sdk_exporter_metric_data_point_exported_total counter",
            f'otel_sdk_exporter_metric_data_point_exported_total{{{svc},otel_component_type="otlp_grpc_metric_exporter"}} {SDK["points"]}',
            "# TYPE otel_sdk_processor_span_processed_total counter",
            f'otel_sdk_processor_span_processed_total{{{svc},otel_component_type="batching_span_processor"}} {SDK["spans"]}',
            "# TYPE otel_sdk_processor_log_processed_total counter",
            f'otel_sdk_processor_log_processed_total{{{svc},otel_component_type="batching_log_processor"}} {SDK["logs"]}',
            "# TYPE otel_sdk_processor_span_queue_size gauge",
            f'otel_sdk_processor_span_queue_size{{{svc},otel_component_type="batching_span_processor"}} {SDK["spans"] % 7}',
            "# TYPE otel_sdk_processor_span_queue_capacity gauge",
            f'otel_sdk_processor_span_queue_capacity{{{svc},otel_component_type="batching_span_processor"}} 2048',
            "# TYPE otel_sdk_processor_log_queue_size gauge",
            f'otel_sdk_processor_log_queue_size{{{svc},otel_component_type="batching_log_processor"}} {SDK["logs"] % 5}',
            "# TYPE otel_sdk_processor_log_queue_capacity gauge",
            f'otel_sdk_processor_log_queue_capacity{{{svc},otel_component_type="batching_log_processor"}} 2048',
            "# TYPE otel_sdk_exporter_operation_duration_seconds histogram",
        ]
        exports = SDK["spans"] // 10 + 1
        for ctype in ("otlp_grpc_span_exporter", "otlp_grpc_log_exporter", "otlp_grpc_metric_exporter"):
            labels = f'{svc},otel_component_type="{ctype}"'
            for b in BUCKETS:
                out.append(f'otel_sdk_exporter_operation_duration_seconds_bucket{{{labels},le="{fmt_le(b)}"}} {exports if b >= 0.01 else 0}')
            out.append(f'otel_sdk_exporter_operation_duration_seconds_bucket{{{labels},le="+Inf"}} {exports}')
            out.append(f"otel_sdk_exporter_operation_duration_seconds_sum{{{labels}}} {exports * 0.008}")
            out.append(f"otel_sdk_exporter_operation_duration_seconds_count{{{labels}}} {exports}")
    return "\n".join(out) + "\n"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/metrics":
            body = metrics_text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        route = route_of(url.path)
        start = time.monotonic()
        with LOCK:
            ACTIVE[("GET", route)] = ACTIVE.get(("GET", route), 0) + 1
        status = 200
        if url.path == "/error":
            status = 500
        elif url.path == "/slow":
            ms = int(parse_qs(url.query).get("ms", ["100"])[0])
            time.sleep(min(ms, 5000) / 1000)
        elif route == "unmatched":
            status = 404
        with LOCK:
            ACTIVE[("GET", route)] -= 1
        observe("GET", route, status, time.monotonic() - start)
        body = b"ok\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    host, port = os.environ.get("LISTEN_ADDR", "127.0.0.1:3000").rsplit(":", 1)
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
