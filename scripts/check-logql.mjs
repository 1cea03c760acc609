// Parses every LogQL query the project ships with Grafana's own LogQL grammar
// (@grafana/lezer-logql, the parser of Grafana's Loki query editor) and fails on any
// syntax error. Sources: Loki targets of dashboards/*.json, and the trace->logs query of
// stack/grafana/provisioning/datasources/datasources.yaml.
//
// Usage: NODE_PATH=<dir with node_modules> node scripts/check-logql.mjs <repo root>
// (scripts/check-stack.sh installs the grammar and runs this.)
import { createRequire } from "node:module";
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";

const root = process.argv[2] ?? ".";
const require = createRequire(resolve(process.env.LOGQL_NODE_MODULES ?? root, "noop.js"));
const { parser } = require("@grafana/lezer-logql");

// Grafana variables -> values that keep the query valid.
function substitute(q) {
  return q
    .replaceAll("$__auto", "1m")
    .replaceAll("$__interval", "1m")
    .replaceAll("$__rate_interval", "1m")
    .replaceAll("${__tags}", 'service_name="demo"')
    .replaceAll("${__trace.traceId}", "0af7651916cd43dd8448eb211c80319c")
    .replaceAll("$service", "demo");
}

function errors(query) {
  const tree = parser.parse(query);
  const found = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) found.push(`error at ${node.from}: ${JSON.stringify(query.slice(node.from, node.from + 20))}`);
    },
  });
  return found;
}

const queries = [];
for (const file of readdirSync(join(root, "dashboards")).filter((f) => f.endsWith(".json")).sort()) {
  const d = JSON.parse(readFileSync(join(root, "dashboards", file), "utf8"));
  const panels = (d.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
  for (const p of panels) {
    for (const t of p.targets ?? []) {
      const ds = t.datasource ?? p.datasource ?? {};
      if (ds.type === "loki") queries.push({ origin: `${file} panel "${p.title}" ${t.refId}`, q: t.expr });
    }
  }
}
const ds = readFileSync(join(root, "stack/grafana/provisioning/datasources/datasources.yaml"), "utf8");
for (const m of ds.matchAll(/^\s*query: '(\{.*)'\s*$/gm)) {
  // `$$` is the provisioning-file escape of `$`.
  queries.push({ origin: "datasources.yaml tracesToLogsV2", q: m[1].replaceAll("$$", "$") });
}

// Self-test: the grammar must reject a broken query, or this check proves nothing.
const broken = '{service_name="demo" | json';
if (errors(broken).length === 0) {
  console.error(`self-test failed: ${broken} parsed without error`);
  process.exit(2);
}

let failed = 0;
for (const { origin, q } of queries) {
  const errs = errors(substitute(q));
  if (errs.length) {
    failed++;
    console.error(`FAIL ${origin}: ${q}\n     ${errs.join("; ")}`);
  }
}
if (queries.length === 0) {
  console.error("no LogQL queries found");
  process.exit(2);
}
console.log(`LogQL: ${queries.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
