#!/usr/bin/env python3
"""Offline structural check of alloy/config.alloy (no Alloy binary needed).

Alloy's own `alloy validate` / `alloy fmt --test` need the Alloy binary, which only the
Docker CI (.github/workflows/stack.yml) has. This check covers, offline:

  1. syntax: the Alloy grammar subset (blocks, attributes, strings, raw strings, numbers,
     lists, objects, function calls, references, operators) parses, braces balance;
  2. components: every block is a known component or config block, with its stability
     level; compose.yaml passes a --stability.level that allows the highest one used;
  3. arguments: each component's attributes and sub-blocks are among the documented ones
     (catches typos that `alloy validate` would reject as unknown properties);
  4. wiring: every reference (`otelcol.processor.batch.default.input`, ...) names a
     declared component and an export it has; every declared component is used;
  5. pipeline shape, per signal, by walking the graph from the OTLP receiver:
     memory_limiter comes first; redaction before batching; the sampler only on traces;
     traces end at Tempo, logs at Loki's /otlp, metrics at Mimir's /otlp; every exporter
     has retry_on_failure and an enabled sending_queue;
  6. deployment: receivers bind 0.0.0.0, compose starts Alloy with
     --server.http.listen-addr=0.0.0.0:12345;
  7. redaction behaviour: the OTTL replace_pattern rules on url.query / url.full are
     applied (Python `re`, same semantics as Go RE2 for the constructs used) to sample
     URLs, which must come out with secrets masked and everything else intact.

Usage: python3 scripts/check-alloy.py [alloy/config.alloy] [compose.yaml]
       python3 scripts/check-alloy.py --self-test
"""
import re
import sys

# ------------------------------------------------------------------ grammar
TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<raw>`[^`]*`)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%^<>!])
  | (?P<punct>[{}\[\]().,=:])
    """,
    re.S | re.X,
)


class ParseError(Exception):
    pass


def tokenize(text):
    pos, out = 0, []
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            line = text.count("\n", 0, pos) + 1
            raise ParseError(f"line {line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind != "ws":
            out.append((kind, m.group(), text.count("\n", 0, pos) + 1))
        pos = m.end()
    out.append(("eof", "", text.count("\n") + 1))
    return out


class Parser:
    def __init__(self, tokens):
        self.t, self.i = tokens, 0
        self.refs = []  # (dotted reference, line)

    def peek(self, k=0):
        return self.t[self.i + k]

    def next(self):
        tok = self.t[self.i]
        self.i += 1
        return tok

    def expect(self, value):
        tok = self.next()
        if tok[1] != value:
            raise ParseError(f"line {tok[2]}: expected {value!r}, found {tok[1]!r}")
        return tok

    def body(self, end):
        items = []
        while self.peek()[0] != "eof" and self.peek()[1] != end:
            items.append(self.statement())
        return items

    def statement(self):
        kind, name, line = self.next()
        if kind != "ident":
            raise ParseError(f"line {line}: expected a block or attribute name, found {name!r}")
        if self.peek()[1] == "=":
            self.next()
            return ("attr", name, self.expr(), line)
        parts = [name]
        while self.peek()[1] == ".":
            self.next()
            tok = self.next()
            if tok[0] != "ident":
                raise ParseError(f"line {tok[2]}: bad block name")
            parts.append(tok[1])
        label = None
        if self.peek()[0] == "str":
            label = self.next()[1][1:-1]
        self.expect("{")
        inner = self.body("}")
        self.expect("}")
        return ("block", ".".join(parts), label, inner, line)

    def expr(self):
        left = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] not in ("!",):
            self.next()
            left = ("binop", left, self.unary())
        return left

    def unary(self):
        if self.peek()[1] in ("!", "-"):
            self.next()
            return ("unary", self.unary())
        return self.postfix(self.primary())

    def postfix(self, value):
        while self.peek()[1] == "[":
            self.next()
            index = self.expr()
            self.expect("]")
            value = ("index", value, index)
        return value

    def primary(self):
        kind, text, line = self.next()
        if kind in ("str", "raw"):
            return ("string", text[1:-1], line)
        if kind == "num":
            return ("number", float(text), line)
        if kind == "ident" and text in ("true", "false", "null"):
            return ("literal", text, line)
        if text == "[":
            items = []
            while self.peek()[1] != "]":
                items.append(self.expr())
                if self.peek()[1] == ",":
                    self.next()
                elif self.peek()[1] != "]":
                    raise ParseError(f"line {self.peek()[2]}: expected ',' or ']'")
            self.expect("]")
            return ("list", items, line)
        if text == "{":
            fields = []
            while self.peek()[1] != "}":
                key = self.next()
                if key[0] not in ("ident", "str"):
                    raise ParseError(f"line {key[2]}: bad object key {key[1]!r}")
                self.expect("=")
                fields.append((key[1].strip('"'), self.expr()))
                if self.peek()[1] == ",":
                    self.next()
                elif self.peek()[1] != "}":
                    raise ParseError(f"line {self.peek()[2]}: expected ',' or '}}'")
            self.expect("}")
            return ("object", fields, line)
        if text == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if kind == "ident":
            parts = [text]
            while self.peek()[1] == ".":
                self.next()
                tok = self.next()
                if tok[0] != "ident":
                    raise ParseError(f"line {tok[2]}: bad reference")
                parts.append(tok[1])
            if self.peek()[1] == "(":
                self.next()
                args = []
                while self.peek()[1] != ")":
                    args.append(self.expr())
                    if self.peek()[1] == ",":
                        self.next()
                    elif self.peek()[1] != ")":
                        raise ParseError(f"line {self.peek()[2]}: expected ',' or ')'")
                self.expect(")")
                return ("call", ".".join(parts), args, line)
            self.refs.append((".".join(parts), line))
            return ("ref", ".".join(parts), line)
        raise ParseError(f"line {line}: unexpected {text!r}")


def parse(text):
    p = Parser(tokenize(text))
    items = p.body(None)
    if p.peek()[0] != "eof":
        raise ParseError(f"line {p.peek()[2]}: unexpected {p.peek()[1]!r}")
    return items, p.refs


# ------------------------------------------------------------------ component schema
STABILITY = ["generally-available", "public-preview", "experimental"]
QUEUE = {"enabled", "num_consumers", "queue_size", "storage", "blocking", "block_on_overflow", "sizer", "wait_for_result", "batch"}
RETRY = {"enabled", "initial_interval", "max_interval", "max_elapsed_time", "multiplier", "randomization_factor"}
TLS = {"insecure", "insecure_skip_verify", "ca_file", "ca_pem", "cert_file", "cert_pem", "key_file", "key_pem", "server_name", "min_version", "max_version", "reload_interval", "include_system_ca_certs_pool"}
CLIENT = {"endpoint", "compression", "tls", "headers", "auth", "balancer_name", "authority", "keepalive", "read_buffer_size", "write_buffer_size", "wait_for_ready", "timeout", "max_idle_conns", "max_idle_conns_per_host", "max_conns_per_host", "idle_conn_timeout", "disable_keep_alives", "http2_read_idle_timeout", "http2_ping_timeout", "proxy_url"}
SIGNALS = {"metrics", "logs", "traces"}
# component -> (stability, allowed top-level keys, allowed keys per sub-block, exports)
COMPONENTS = {
    "otelcol.receiver.otlp": ("generally-available", {"grpc", "http", "output", "debug_metrics"},
        {"grpc": {"endpoint", "max_recv_msg_size", "tls", "keepalive", "transport", "max_concurrent_streams", "read_buffer_size", "write_buffer_size", "include_metadata", "auth"},
         "http": {"endpoint", "max_request_body_size", "cors", "tls", "traces_url_path", "metrics_url_path", "logs_url_path", "include_metadata", "auth"},
         "output": SIGNALS}, set()),
    "otelcol.processor.memory_limiter": ("generally-available", {"check_interval", "limit", "spike_limit", "limit_percentage", "spike_limit_percentage", "output", "debug_metrics"}, {"output": SIGNALS}, {"input"}),
    "otelcol.processor.attributes": ("generally-available", {"action", "include", "exclude", "output", "debug_metrics"},
        {"action": {"key", "value", "pattern", "action", "from_attribute", "from_context", "converted_type", "regex"}, "output": SIGNALS}, {"input"}),
    "otelcol.processor.transform": ("generally-available", {"error_mode", "trace_statements", "metric_statements", "log_statements", "output", "debug_metrics"},
        {"trace_statements": {"context", "statements", "conditions", "error_mode"}, "log_statements": {"context", "statements", "conditions", "error_mode"},
         "metric_statements": {"context", "statements", "conditions", "error_mode"}, "output": SIGNALS}, {"input"}),
    "otelcol.processor.groupbyattrs": ("generally-available", {"keys", "output", "debug_metrics"}, {"output": SIGNALS}, {"input"}),
    "otelcol.processor.probabilistic_sampler": ("generally-available", {"sampling_percentage", "hash_seed", "mode", "fail_closed", "sampling_precision", "attribute_source", "from_attribute", "sampling_priority", "output", "debug_metrics"}, {"output": SIGNALS}, {"input"}),
    "otelcol.processor.batch": ("generally-available", {"timeout", "send_batch_size", "send_batch_max_size", "metadata_keys", "metadata_cardinality_limit", "output", "debug_metrics"}, {"output": SIGNALS}, {"input"}),
    "otelcol.storage.file": ("public-preview", {"directory", "timeout", "compaction", "fsync", "create_directory", "directory_permissions"}, {}, {"handler"}),
    "otelcol.exporter.otlp": ("generally-available", {"client", "timeout", "sending_queue", "retry_on_failure", "debug_metrics"},
        {"client": CLIENT, "tls": TLS, "sending_queue": QUEUE, "retry_on_failure": RETRY}, {"input"}),
    "otelcol.exporter.otlphttp": ("generally-available", {"client", "metrics_endpoint", "logs_endpoint", "traces_endpoint", "encoding", "sending_queue", "retry_on_failure", "debug_metrics"},
        {"client": CLIENT, "tls": TLS, "sending_queue": QUEUE, "retry_on_failure": RETRY}, {"input"}),
    "prometheus.exporter.self": ("generally-available", set(), {}, {"targets"}),
    "prometheus.scrape": ("generally-available", {"targets", "forward_to", "job_name", "scrape_interval", "scrape_timeout", "metrics_path", "scheme", "honor_labels", "honor_timestamps", "params", "extra_metrics", "scrape_protocols", "scrape_classic_histograms", "enable_protobuf_negotiation", "sample_limit", "target_limit", "label_limit", "body_size_limit", "clustering", "basic_auth", "bearer_token", "bearer_token_file", "tls_config", "authorization", "oauth2", "proxy_url", "follow_redirects", "enable_http2"}, {}, set()),
    "prometheus.remote_write": ("generally-available", {"endpoint", "external_labels", "wal"},
        {"endpoint": {"url", "name", "headers", "send_exemplars", "send_native_histograms", "remote_timeout", "queue_config", "metadata_config", "basic_auth", "bearer_token", "bearer_token_file", "authorization", "oauth2", "sigv4", "azuread", "tls_config", "proxy_url", "follow_redirects", "enable_http2", "write_relabel_config", "protobuf_message"},
         "queue_config": {"capacity", "max_shards", "min_shards", "max_samples_per_send", "batch_send_deadline", "min_backoff", "max_backoff", "retry_on_http_429", "sample_age_limit"},
         "wal": {"truncate_frequency", "min_keepalive_time", "max_keepalive_time"}}, {"receiver"}),
}
CONFIG_BLOCKS = {"livedebugging": {"enabled"}, "logging": {"level", "format", "write_to"}}
STDLIB_PREFIXES = ("sys.", "encoding.", "string.", "array.", "convert.", "json_path", "coalesce", "constants.", "file.")


def check(config_text, compose_text):
    errors = []
    try:
        items, refs = parse(config_text)
    except ParseError as e:
        return [f"syntax: {e}"]

    components = {}  # "name.label" -> (name, label, block items, line)
    for it in items:
        if it[0] == "attr":
            errors.append(f"line {it[3]}: top-level attribute {it[1]!r} (only blocks allowed)")
            continue
        _, name, label, inner, line = it
        if name in CONFIG_BLOCKS:
            for sub in inner:
                if sub[1] not in CONFIG_BLOCKS[name]:
                    errors.append(f"line {sub[-1]}: {name}: unknown argument {sub[1]!r}")
            continue
        if name not in COMPONENTS:
            errors.append(f"line {line}: unknown or unvetted component {name!r}")
            continue
        if label is None:
            errors.append(f"line {line}: component {name} needs a label")
            continue
        key = f"{name}.{label}"
        if key in components:
            errors.append(f"line {line}: {key} declared twice")
        components[key] = (name, label, inner, line)
        _, top, subs, _ = COMPONENTS[name]

        def walk(block_items, allowed, where):
            for sub in block_items:
                if sub[1] not in allowed:
                    errors.append(f"line {sub[-1]}: {where}: unknown argument {sub[1]!r}")
                if sub[0] == "block":
                    walk(sub[3], subs.get(sub[1], set()), f"{where} > {sub[1]}")

        walk(inner, top, key)

    # Stability level vs. compose's --stability.level.
    needed = max((STABILITY.index(COMPONENTS[c[0]][0]) for c in components.values()), default=0)
    m = re.search(r"--stability\.level=([a-z-]+)", compose_text)
    given = STABILITY.index(m.group(1)) if m and m.group(1) in STABILITY else 0
    if given < needed:
        errors.append(f"compose.yaml: components need --stability.level={STABILITY[needed]}, compose passes {STABILITY[given]}")
    if "--server.http.listen-addr=0.0.0.0:12345" not in compose_text:
        errors.append("compose.yaml: Alloy must run with --server.http.listen-addr=0.0.0.0:12345 (default is 127.0.0.1)")

    # References resolve.
    def resolve(ref):
        parts = ref.split(".")
        for k in range(1, len(parts) - 1):
            key = ".".join(parts[: k + 1])
            if key in components:
                return key, ".".join(parts[k + 1:])
        return None, None

    used = set()
    for ref, line in refs:
        if ref.startswith(STDLIB_PREFIXES):
            continue
        key, export = resolve(ref)
        if key is None:
            errors.append(f"line {line}: reference {ref!r} names no declared component")
            continue
        used.add(key)
        exports = COMPONENTS[components[key][0]][3]
        if export not in exports:
            errors.append(f"line {line}: {key} has no export {export!r} (has {sorted(exports)})")
    for key, (name, _, _, line) in components.items():
        if key not in used and name not in ("otelcol.receiver.otlp", "prometheus.scrape"):
            errors.append(f"line {line}: {key} is declared but never referenced")

    # Graph per signal.
    def outputs(key, signal):
        name, _, inner, _ = components[key]
        out = []
        for sub in inner:
            if sub[0] == "block" and sub[1] == "output":
                for a in sub[3]:
                    if a[0] == "attr" and a[1] == signal:
                        out += [resolve(r[1])[0] for r in a[2][1] if r[0] == "ref"]
            if sub[0] == "attr" and sub[1] == "forward_to":
                out += [resolve(r[1])[0] for r in sub[2][1] if r[0] == "ref"]
        return [o for o in out if o is not None]

    def attr(key, *path):
        items_ = components[key][2]
        for p in path[:-1]:
            items_ = next((s[3] for s in items_ if s[0] == "block" and s[1] == p), [])
        for s in items_:
            if s[0] == "attr" and s[1] == path[-1]:
                return s[2]
        return None

    def string_value(v):
        if v is None:
            return ""
        if v[0] == "string":
            return v[1]
        if v[0] == "call":  # coalesce(sys.env(...), "default"): check the default
            return " ".join(string_value(a) for a in v[2])
        return ""

    receivers = [k for k, c in components.items() if c[0] == "otelcol.receiver.otlp"]
    if len(receivers) != 1:
        errors.append("expected exactly one otelcol.receiver.otlp")
    else:
        rx = receivers[0]
        for proto, port in (("grpc", "4317"), ("http", "4318")):
            ep = string_value(attr(rx, proto, "endpoint"))
            if ep != f"0.0.0.0:{port}":
                errors.append(f"{rx}: {proto} endpoint must be 0.0.0.0:{port}, is {ep!r}")
        expected_end = {"traces": ("otelcol.exporter.otlp", "tempo:4317"),
                        "logs": ("otelcol.exporter.otlphttp", "http://loki:3100/otlp"),
                        "metrics": ("otelcol.exporter.otlphttp", "http://mimir:9009/otlp")}
        for signal in sorted(SIGNALS):
            paths, stack = [], [[rx]]
            while stack:
                path = stack.pop()
                nxt = outputs(path[-1], signal)
                if not nxt:
                    paths.append(path)
                for n in nxt:
                    if n in path:
                        errors.append(f"{signal}: cycle through {n}")
                        continue
                    stack.append(path + [n])
            for path in paths:
                names = [components[k][0] for k in path]
                shown = " -> ".join(path)
                if len(names) < 2 or names[1] != "otelcol.processor.memory_limiter":
                    errors.append(f"{signal}: memory_limiter must come right after the receiver: {shown}")
                if "otelcol.processor.batch" not in names:
                    errors.append(f"{signal}: no batch processor: {shown}")
                else:
                    b = names.index("otelcol.processor.batch")
                    if "otelcol.processor.attributes" not in names[:b]:
                        errors.append(f"{signal}: redaction (attributes) must come before batch: {shown}")
                    if signal != "metrics" and "otelcol.processor.transform" not in names[:b]:
                        errors.append(f"{signal}: URL redaction (transform) must come before batch: {shown}")
                    if "otelcol.processor.probabilistic_sampler" in names and names.index("otelcol.processor.probabilistic_sampler") > b:
                        errors.append(f"{signal}: sample before batching: {shown}")
                if ("otelcol.processor.probabilistic_sampler" in names) != (signal == "traces"):
                    errors.append(f"{signal}: the probabilistic sampler belongs on the traces path only: {shown}")
                end_name, end_endpoint = expected_end[signal]
                if names[-1] != end_name or end_endpoint not in string_value(attr(path[-1], "client", "endpoint")):
                    errors.append(f"{signal}: must end at {end_name} {end_endpoint}: {shown}")
            if not paths:
                errors.append(f"{signal}: no path from the receiver")
    for key, (name, _, _, _) in components.items():
        if name.startswith("otelcol.exporter."):
            queue = attr(key, "sending_queue", "enabled")
            if queue is None or queue[1] != "true":
                errors.append(f"{key}: sending_queue {{ enabled = true }} missing")
            retry = attr(key, "retry_on_failure", "enabled")
            if retry is None or retry[1] != "true":
                errors.append(f"{key}: retry_on_failure {{ enabled = true }} missing")
    sampler = [k for k, c in components.items() if c[0] == "otelcol.processor.probabilistic_sampler"]
    for k in sampler:
        if 'sys.env("TRACE_SAMPLING_PERCENTAGE")' not in config_text:
            errors.append(f"{k}: sampling_percentage must come from sys.env(\"TRACE_SAMPLING_PERCENTAGE\")")
    for header in ("http.request.header.authorization", "http.request.header.cookie", "http.response.header.set-cookie", "http.request.header.proxy-authorization"):
        if f'"{header}"' not in config_text:
            errors.append(f"redaction: {header} is not handled")
    for attr_name in ('attributes["url.query"]', 'attributes["url.full"]'):
        if attr_name not in config_text:
            errors.append(f"redaction: {attr_name} is not scrubbed")
    errors += check_redaction(config_text)
    if not any(c[0] == "prometheus.exporter.self" for c in components.values()):
        errors.append("Alloy's own metrics (prometheus.exporter.self) are not collected")
    return errors


# (attribute, input, expected output) after all replace_pattern statements ran.
REDACTION_CASES = [
    ("url.query", "code=abc123&state=xyz", "code=REDACTED&state=xyz"),
    ("url.query", "id=7&access_token=s3cr3t", "id=7&access_token=REDACTED"),
    ("url.query", "API_KEY=k&page=2", "API_KEY=REDACTED&page=2"),
    ("url.query", "page=2&sort=asc", "page=2&sort=asc"),
    ("url.full", "https://api.example.com/cb?x=1&password=hunter2#frag", "https://api.example.com/cb?x=1&password=REDACTED#frag"),
    ("url.full", "https://user:pa55@example.com/a?b=c", "https://REDACTED@example.com/a?b=c"),
    ("url.full", "http://example.com/users/42", "http://example.com/users/42"),
    # The spellings telemetry-init's redaction list matches (camelCase, brackets, suffixes).
    ("url.query", "user[password]=pw&refreshToken=rt&status_code=200", "user[password]=REDACTED&refreshToken=REDACTED&status_code=200"),
    ("url.query", "monkey=1&X-Api-Key=k&sessionId=s", "monkey=1&X-Api-Key=REDACTED&sessionId=REDACTED"),
    ("url.full", "https://h/cart;jsessionid=S1/items?q=1&token=t", "https://h/cart;jsessionid=REDACTED/items?q=1&token=REDACTED"),
    ("url.full", "https://a:b@c@h/x", "https://REDACTED@h/x"),
]


def check_redaction(config_text):
    """Run the sample URLs through the span and the log statements separately."""
    errors = []
    pat = re.compile(r'replace_pattern\(attributes\["(url\.(?:query|full))"\], "((?:[^"\\]|\\.)*)", "((?:[^"\\]|\\.)*)"\)')
    contexts = re.findall(r"(trace_statements|log_statements)\s*\{(.*?)\n  \}", config_text, re.S)
    for ctx in ("trace_statements", "log_statements"):
        stmts = [m for name, body in contexts if name == ctx for m in pat.findall(body)]
        if not stmts:
            errors.append(f"redaction: no replace_pattern on url.query / url.full in {ctx}")
            continue
        for attr_name, given, want in REDACTION_CASES:
            value = given
            for target, pattern, repl in stmts:
                if target == attr_name:
                    value = re.sub(pattern, re.sub(r"\$\{(\d+)\}", r"\\g<\1>", repl), value)
            if value != want:
                errors.append(f"redaction ({ctx}): {attr_name} {given!r} became {value!r}, expected {want!r}")
    return errors


def self_test(config_text, compose_text):
    """Each mutation must be caught, or the check proves nothing."""
    mutations = [
        ("unbalanced brace", lambda t: t.replace("otelcol.processor.batch \"default\" {", "otelcol.processor.batch \"default\" {{", 1)),
        ("typo in argument", lambda t: t.replace("check_interval", "check_intervall", 1)),
        ("dangling reference", lambda t: t.replace("otelcol.processor.batch.default.input]", "otelcol.processor.batch.defualt.input]", 1)),
        ("unknown component", lambda t: t.replace("otelcol.processor.groupbyattrs \"level\"", "otelcol.processor.groupbyattr \"level\"", 1)),
        ("receiver on loopback", lambda t: t.replace('"0.0.0.0:4317"', '"127.0.0.1:4317"', 1)),
        ("secret query value kept", lambda t: t.replace("(?:[^&;#=/?]*(?:password|", "(?:[^&;#=/?]*(?:", 2)),
        ("memory_limiter bypassed", lambda t: t.replace("traces  = [otelcol.processor.memory_limiter.default.input]", "traces  = [otelcol.processor.attributes.redact.input]", 1)),
    ]
    failed = 0
    for name, mutate in mutations:
        mutated = mutate(config_text)
        if mutated == config_text:
            print(f"self-test: mutation {name!r} did not apply", file=sys.stderr)
            failed += 1
        elif not check(mutated, compose_text):
            print(f"self-test: mutation {name!r} was not detected", file=sys.stderr)
            failed += 1
    if not check(config_text, compose_text.replace("--stability.level=public-preview", "--stability.level=generally-available")):
        print("self-test: missing stability level not detected", file=sys.stderr)
        failed += 1
    return failed


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    config = args[0] if args else "alloy/config.alloy"
    compose = args[1] if len(args) > 1 else "compose.yaml"
    config_text = open(config, encoding="utf-8").read()
    compose_text = open(compose, encoding="utf-8").read()
    if "--self-test" in sys.argv:
        failed = self_test(config_text, compose_text)
        print(f"alloy check self-test: {8 - failed} passed, {failed} failed")
        return 1 if failed else 0
    errors = check(config_text, compose_text)
    for e in errors:
        print(f"{config}: {e}", file=sys.stderr)
    if errors:
        return 1
    print(f"{config}: structure OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
