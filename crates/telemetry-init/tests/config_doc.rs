//! Acceptance 4 of issue 11: `docs/configuration.md` lists every `OTEL_*`
//! variable the crate reads, marks each honoured or not, and none is parsed
//! without effect.
//!
//! Three sources are compared with the table of the section "Every
//! `OTEL_*` variable, honoured or not":
//!
//! * what the configuration really reads: `resolve()` runs with a lookup
//!   that records every name it is asked for, under several environments
//!   (per-signal names are built at run time, so a text search alone would
//!   miss them);
//! * the `"OTEL_…"` string literals of every crate and example in the
//!   workspace (code that reads the environment itself, like the demo);
//! * for each variable marked *yes*, a valid non-default value, which must
//!   change the resolved configuration.
//!
//! Adding a variable to the code without a row (or with a *no* row) fails
//! here, and so does a *yes* row that nothing reads or that changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use telemetry_init::Config;
use telemetry_init_testing::TestPki;

const SIGNALS: [&str; 3] = ["TRACES", "LOGS", "METRICS"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The table: variable → honoured. `{S}` rows are expanded per signal;
/// names ending in `*` are prefixes (allowed on *no* rows only).
fn documented() -> BTreeMap<String, bool> {
    let text = std::fs::read_to_string(workspace().join("docs/configuration.md"))
        .expect("docs/configuration.md");
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("Every `OTEL_*` variable, honoured or not"))
        .expect("the section listing every OTEL_* variable");
    let mut table = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (names, honoured) = (cells[1], cells[2]);
        let honoured = if honoured.starts_with("yes") {
            true
        } else if honoured.starts_with("no") {
            false
        } else {
            panic!("row {row:?}: the second cell must start with yes or no");
        };
        for name in names.split('`').skip(1).step_by(2) {
            assert!(name.starts_with("OTEL_"), "row {row:?}: {name}");
            let expanded: Vec<String> = if name.contains("{S}") {
                SIGNALS.iter().map(|s| name.replace("{S}", s)).collect()
            } else {
                vec![name.to_string()]
            };
            for n in expanded {
                assert!(
                    !(honoured && n.ends_with('*')),
                    "a honoured row names exact variables: {n}"
                );
                assert!(
                    table.insert(n.clone(), honoured).is_none(),
                    "{n} is listed twice"
                );
            }
        }
    }
    assert!(table.len() > 40, "the table was not parsed: {table:?}");
    table
}

/// Whether `name` is covered by a *no* row's prefix (`OTEL_EXPORTER_ZIPKIN_*`).
fn not_honoured(table: &BTreeMap<String, bool>, name: &str) -> bool {
    table.get(name) == Some(&false)
        || table
            .iter()
            .any(|(k, h)| !h && k.ends_with('*') && name.starts_with(k.trim_end_matches('*')))
}

/// Resolves with `vars`, recording every name looked up into `seen`.
fn resolve(
    vars: &[(String, String)],
    seen: &Arc<Mutex<BTreeSet<String>>>,
) -> Result<Config, telemetry_init::Error> {
    let vars: BTreeMap<String, String> = vars.iter().cloned().collect();
    let seen = Arc::clone(seen);
    telemetry_init::builder()
        .service_name("doc-check")
        .env_lookup(move |k| {
            seen.lock().unwrap().insert(k.to_string());
            vars.get(k).cloned()
        })
        .resolve()
}

/// Everything of the resolved configuration an `OTEL_*` variable can set.
fn fingerprint(r: &Result<Config, telemetry_init::Error>) -> String {
    match r {
        Err(e) => format!("error: {e}"),
        Ok(c) => format!(
            "{:?}",
            (
                c.sdk_disabled,
                &c.service_name,
                &c.resource_attributes,
                &c.traces,
                &c.logs,
                &c.metrics,
                &c.sampler,
                &c.propagators,
                (c.span_batch, c.log_batch, c.span_limits, c.log_limits),
                c.metric_export_interval,
                c.exemplar_filter,
            )
        ),
    }
}

/// Every `"OTEL_…"` string literal in the workspace's crates and examples,
/// with the file it is in.
fn literals() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    for group in ["crates", "examples"] {
        for member in std::fs::read_dir(workspace().join(group))
            .unwrap()
            .flatten()
        {
            walk(&member.path().join("src"), &mut files);
        }
    }
    assert!(files.len() > 50, "the sources were not found: {files:?}");
    let mut found = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("\"OTEL_") {
            let name: String = rest[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            let after = &rest[i + 1 + name.len()..];
            if after.starts_with('"') {
                found.insert(name.clone(), file.clone());
            }
            rest = &rest[i + 1..];
        }
    }
    found
}

/// A valid value different from the default, by the variable's kind.
fn sample(name: &str, pki: &telemetry_init_testing::PkiFiles) -> Vec<(String, String)> {
    let path = |p: &Path| p.display().to_string();
    let one = |v: &str| vec![(name.to_string(), v.to_string())];
    let signal_of = |n: &str| {
        SIGNALS
            .iter()
            .find(|s| n.contains(&format!("_{s}_")))
            .copied()
    };
    match name {
        "OTEL_SDK_DISABLED" => one("true"),
        "OTEL_SERVICE_NAME" => one("renamed"),
        "OTEL_RESOURCE_ATTRIBUTES" => one("team=payments"),
        "OTEL_PROPAGATORS" => one("baggage"),
        "OTEL_TRACES_SAMPLER" | "OTEL_METRICS_EXEMPLAR_FILTER" => one("always_off"),
        "OTEL_TRACES_SAMPLER_ARG" => one("0.25"),
        "OTEL_METRIC_EXPORT_INTERVAL" => one("1234"),
        n if n.ends_with("_EXPORTER") => one("console"),
        n if n.ends_with("_LIMIT") => one("7"),
        n if n.ends_with("_MAX_QUEUE_SIZE") => one("7"),
        n if n.ends_with("_MAX_EXPORT_BATCH_SIZE") => one("3"),
        n if n.ends_with("_SCHEDULE_DELAY") || n.ends_with("_EXPORT_TIMEOUT") => one("1234"),
        n if n.ends_with("_ENDPOINT") => one("http://127.0.0.2:4318/v1/elsewhere"),
        n if n.ends_with("_PROTOCOL") => one("http/protobuf"),
        n if n.ends_with("_HEADERS") => one("x-doc-check=1"),
        n if n.ends_with("_TIMEOUT") => one("1234"),
        n if n.ends_with("_COMPRESSION") => one("gzip"),
        // Decides only for a gRPC endpoint without a scheme.
        n if n.ends_with("_INSECURE") => vec![
            (n.to_string(), "true".into()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                "collector.invalid:4317".into(),
            ),
        ],
        n if n.ends_with("_CLIENT_CERTIFICATE") || n.ends_with("_CLIENT_KEY") => {
            // A pair: the other half is set in the baseline too (see main).
            let base = n
                .trim_end_matches("_CLIENT_CERTIFICATE")
                .trim_end_matches("_CLIENT_KEY");
            vec![
                (format!("{base}_CLIENT_CERTIFICATE"), path(&pki.client_cert)),
                (format!("{base}_CLIENT_KEY"), path(&pki.client_key)),
            ]
        }
        n if n.ends_with("_CERTIFICATE") => one(&path(&pki.ca)),
        other => panic!(
            "{other} is documented as honoured but this test has no sample value for it \
             (signal {:?}): add one to `sample`",
            signal_of(other)
        ),
    }
}

#[test]
fn every_otel_variable_read_is_documented_and_has_an_effect() {
    let table = documented();
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let pki = TestPki::generate().expect("pki");
    let dir = std::env::temp_dir().join(format!("config-doc-{}", std::process::id()));
    let files = pki.write_files(&dir).expect("pem files");

    // What the configuration reads, with nothing set, with an endpoint
    // (every signal's OTLP settings), and in every run below.
    let endpoint = (
        "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
        "http://127.0.0.1:4317".to_string(),
    );
    resolve(&[], &seen).expect("empty environment");
    let baseline = resolve(std::slice::from_ref(&endpoint), &seen);
    let base_print = fingerprint(&baseline);
    assert!(baseline.is_ok(), "{base_print}");

    // Each honoured variable changes what is resolved.
    let mut without_effect = Vec::new();
    for (name, _) in table.iter().filter(|(_, h)| **h) {
        let mut vars = vec![endpoint.clone()];
        let mut before_vars = vars.clone();
        for (k, v) in sample(name, &files) {
            vars.retain(|(x, _)| *x != k);
            vars.push((k.clone(), v.clone()));
            // The other half of a client certificate/key pair, and the
            // schemeless endpoint of `_INSECURE`, belong to the baseline.
            if k != *name {
                before_vars.retain(|(x, _)| *x != k);
                before_vars.push((k, v));
            }
        }
        let before = fingerprint(&resolve(&before_vars, &seen));
        let after = resolve(&vars, &seen);
        let after_print = fingerprint(&after);
        assert!(
            after.is_ok(),
            "{name}: the sample value is refused: {after_print}"
        );
        if after_print == before {
            without_effect.push(name.clone());
        }
    }
    assert!(
        without_effect.is_empty(),
        "documented as honoured but changing nothing: {without_effect:?}"
    );

    let read: BTreeSet<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|k| k.starts_with("OTEL_"))
        .cloned()
        .collect();
    // Everything read is documented as honoured.
    let undocumented: Vec<&String> = read
        .iter()
        .filter(|k| table.get(*k) != Some(&true))
        .collect();
    assert!(
        undocumented.is_empty(),
        "read by the configuration but not listed as honoured in docs/configuration.md: {undocumented:?}"
    );
    // Everything documented as honoured is read.
    let unread: Vec<&String> = table
        .iter()
        .filter(|(k, h)| **h && !read.contains(*k))
        .map(|(k, _)| k)
        .collect();
    assert!(
        unread.is_empty(),
        "listed as honoured but never read: {unread:?}"
    );

    // Every OTEL_* name in the sources is a listed, honoured variable, or
    // the prefix of some (`"OTEL_BSP"` + `_MAX_QUEUE_SIZE`); never one
    // listed as not honoured.
    for (name, file) in literals() {
        let prefix_of_honoured = table
            .iter()
            .any(|(k, h)| *h && k.starts_with(&format!("{name}_")));
        assert!(
            !not_honoured(&table, &name),
            "{name} ({}) is used in code but documented as not honoured",
            file.display()
        );
        assert!(
            table.get(&name) == Some(&true) || prefix_of_honoured,
            "{name} ({}) is not listed in docs/configuration.md's table of OTEL_* variables",
            file.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
