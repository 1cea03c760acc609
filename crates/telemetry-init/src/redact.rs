//! One redaction policy for everything this crate records, prints or exports.
//!
//! ```
//! use telemetry_init::redact::Redaction;
//!
//! let policy = Redaction::new().with_key("customer_email").without_key("=code");
//! // Names are compared case-insensitively, with separators ignored:
//! assert!(policy.is_secret_name("user[password]"));
//! assert!(policy.is_secret_name("X-Api-Key"));
//! assert!(policy.is_secret_name("refreshToken"));
//! assert!(policy.is_secret_name("Customer-Email"));
//! assert!(!policy.is_secret_name("code"));
//! assert!(!policy.is_secret_name("http.response.status_code"));
//! assert_eq!(
//!     policy.redact_url("https://bob:hunter2@api.example/a;jsessionid=s1?q=1&token=t"),
//!     "https://REDACTED@api.example/a;jsessionid=REDACTED?q=1&token=REDACTED"
//! );
//! assert_eq!(
//!     policy.redact_text("error sending request for url (http://u:p@db:1/x?api_key=k)"),
//!     "error sending request for url (http://REDACTED@db:1/x?api_key=REDACTED)"
//! );
//! ```
//!
//! # Where it applies
//!
//! The policy in effect ([`current`]) is the one [`install`](crate::install)
//! resolved from the builder ([`Builder::redact_key`](crate::Builder::redact_key),
//! [`Builder::keep_key`](crate::Builder::keep_key)) and `TELEMETRY_REDACT_KEYS`;
//! before `install` (or without it) it is the default list. It is applied to:
//!
//! * `url.query`, `url.path` (path parameters such as `;jsessionid=`) and
//!   `url.full` recorded by the server and client middleware;
//! * every exported span, span event and log record: attributes whose *name*
//!   is secret get the value `REDACTED`, and URLs inside string values, span
//!   status messages and log bodies lose their userinfo and secret
//!   parameters ([`Redaction::redact_text`]);
//! * the stdout log lines (JSON and text): the same two rules per field;
//! * the start-up line and configuration errors: endpoint userinfo is masked
//!   and header values are never printed.
//!
//! # How names match
//!
//! A name is *normalised* by lowercasing ASCII letters and dropping every
//! other ASCII character that is not a letter or digit, so `user[password]`,
//! `user.password`, `User-Password` and `userPassword` all become
//! `userpassword`. A key matches a name when the normalised name **ends
//! with** the normalised key (`token` matches `access_token`,
//! `X-Auth-Token` and `csrfToken`). A key written with a leading `=` matches
//! only the **whole** name (`=code` matches `code` and `CODE`, not
//! `status_code`): short, common words are listed that way.
//!
//! Matching walks the name once, backwards, through a precomputed trie of
//! the reversed keys: it allocates nothing and usually stops after one or
//! two characters.
//!
//! # The default list
//!
//! [`DEFAULT_KEYS`]: passwords, tokens, secrets, API and private keys,
//! authorization, cookies, session ids, signatures, card numbers and
//! national identity numbers.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

/// The value that replaces a secret.
pub const REDACTED: &str = "REDACTED";

/// The environment variable that adds (`name`, `=name`) and removes
/// (`-name`) keys, comma-separated.
pub const ENV_KEYS: &str = "TELEMETRY_REDACT_KEYS";

/// The built-in keys. A leading `=` means "whole name only"; `_` marks
/// where words meet (it is dropped when matching, like every separator, and
/// tells `alloy/config.alloy`'s generated patterns where a separator may
/// be). See the [module docs](self).
pub const DEFAULT_KEYS: &[&str] = &[
    // Passwords.
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "=pass",
    // Tokens and signatures.
    "token",
    "jwt",
    "signature",
    "=sig",
    "=code",
    "=otp",
    // Secrets and keys.
    "secret",
    "secrets",
    "api_key",
    "secret_key",
    "private_key",
    "access_key",
    "=key",
    // Authorization.
    "authorization",
    "auth",
    "credential",
    "credentials",
    // Cookies and sessions.
    "cookie",
    "cookies",
    "session_id",
    "sess_id",
    "=session",
    "=sid",
    // Payment cards.
    "card_number",
    "credit_card",
    "cc_number",
    "cvv",
    "cvv2",
    "cvc",
    "security_code",
    "=pan",
    "=pin",
    // National identity numbers.
    "ssn",
    "social_security_number",
    "national_id",
    "tax_id",
    "passport_number",
];

/// A redaction policy: which names are secret, and how values are masked.
///
/// Cheap to query ([`is_secret_name`](Self::is_secret_name) does not
/// allocate); build it once. See the [module docs](self).
#[derive(Clone, PartialEq, Eq)]
pub struct Redaction {
    /// The keys as written (normalised, with `=` for whole-name keys), sorted.
    keys: Vec<String>,
    trie: Trie,
}

impl Default for Redaction {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Redaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redaction")
            .field("keys", &self.keys)
            .finish()
    }
}

impl Redaction {
    /// The default policy ([`DEFAULT_KEYS`]).
    pub fn new() -> Self {
        Self::from_keys(DEFAULT_KEYS.iter().map(|k| normalise_key(k)))
    }

    /// A policy that redacts no names (URL userinfo is still masked).
    pub fn empty() -> Self {
        Self::from_keys(std::iter::empty())
    }

    fn from_keys(keys: impl Iterator<Item = Option<String>>) -> Self {
        let mut keys: Vec<String> = keys.flatten().collect();
        keys.sort();
        keys.dedup();
        let trie = Trie::build(&keys);
        Self { keys, trie }
    }

    /// Adds a key (`name` matches names ending with it, `=name` whole names
    /// only). A key with no letter or digit is ignored.
    #[must_use]
    pub fn with_key(self, key: &str) -> Self {
        let mut keys = self.keys;
        keys.extend(normalise_key(key));
        Self::from_keys(keys.into_iter().map(Some))
    }

    /// Removes a key, written as it was added (`token`, `=code`); removing
    /// one that is not listed does nothing.
    #[must_use]
    pub fn without_key(self, key: &str) -> Self {
        let Some(key) = normalise_key(key) else {
            return self;
        };
        Self::from_keys(self.keys.into_iter().filter(|k| *k != key).map(Some))
    }

    /// Applies a `TELEMETRY_REDACT_KEYS` style list: `name` or `=name` adds,
    /// `-name` / `-=name` removes, comma-separated.
    ///
    /// Returns the offending entry when one has no letter or digit.
    pub fn apply_list(mut self, list: &str) -> Result<Self, String> {
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (remove, key) = match entry.strip_prefix('-') {
                Some(k) => (true, k.trim()),
                None => (false, entry),
            };
            if normalise_key(key).is_none() {
                return Err(entry.to_string());
            }
            self = if remove {
                self.without_key(key)
            } else {
                self.with_key(key)
            };
        }
        Ok(self)
    }

    /// The keys in effect, normalised and sorted (`=` marks whole-name keys).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(String::as_str)
    }

    /// Whether `name` (an attribute, field, parameter or header name) names a
    /// secret. Allocation-free.
    pub fn is_secret_name(&self, name: &str) -> bool {
        self.trie.matches(name.as_bytes())
    }

    /// A query string (without `?`) with the value of every parameter whose
    /// (percent-decoded) name is secret replaced by `REDACTED`. Borrowed when
    /// nothing changes.
    pub fn redact_query<'a>(&self, query: &'a str) -> Cow<'a, str> {
        self.redact_pairs(query, &['&', ';'])
    }

    /// A path with the value of every secret path parameter
    /// (`/a;jsessionid=…/b`) replaced by `REDACTED`. Borrowed when nothing
    /// changes (always, for a path without `;`).
    pub fn redact_path<'a>(&self, path: &'a str) -> Cow<'a, str> {
        if !path.contains(';') {
            return Cow::Borrowed(path);
        }
        let mut out: Option<String> = None;
        let mut done = 0;
        // Each `;` starts a parameter that ends at the next `;` or `/`.
        let bytes = path.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b';' {
                i += 1;
                continue;
            }
            let start = i + 1;
            let end = path[start..]
                .find([';', '/'])
                .map_or(path.len(), |n| start + n);
            let param = &path[start..end];
            if let Some((k, v)) = param.split_once('=')
                && !v.is_empty()
                && v != REDACTED
                && self.is_secret_name(&percent_decode_lossy(k))
            {
                let o = out.get_or_insert_with(|| String::with_capacity(path.len()));
                let value_at = start + k.len() + 1;
                o.push_str(&path[done..value_at]);
                o.push_str(REDACTED);
                done = end;
            }
            i = end;
        }
        match out {
            None => Cow::Borrowed(path),
            Some(mut o) => {
                o.push_str(&path[done..]);
                Cow::Owned(o)
            }
        }
    }

    fn redact_pairs<'a>(&self, s: &'a str, seps: &[char]) -> Cow<'a, str> {
        let mut out: Option<String> = None;
        let mut done = 0;
        let mut start = 0;
        while start <= s.len() {
            let end = s[start..].find(seps).map_or(s.len(), |n| start + n);
            let pair = &s[start..end];
            if let Some((k, v)) = pair.split_once('=')
                && !v.is_empty()
                && v != REDACTED
                && self.is_secret_name(&percent_decode_lossy(k))
            {
                let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
                let value_at = start + k.len() + 1;
                o.push_str(&s[done..value_at]);
                o.push_str(REDACTED);
                done = end;
            }
            start = end + 1;
        }
        match out {
            None => Cow::Borrowed(s),
            Some(mut o) => {
                o.push_str(&s[done..]);
                Cow::Owned(o)
            }
        }
    }

    /// A URL (absolute or a path with query) with its userinfo replaced by
    /// `REDACTED`, and secret path parameters, query parameters and
    /// fragment parameters (`#access_token=…`) masked. Borrowed when nothing
    /// changes.
    pub fn redact_url<'a>(&self, url: &'a str) -> Cow<'a, str> {
        // Split off the parts: [scheme://][userinfo@]host path [?query] [#fragment].
        let (before_path, rest) = match url.find("://") {
            Some(i) => {
                let auth_start = i + 3;
                let auth_end = url[auth_start..]
                    .find(['/', '?', '#'])
                    .map_or(url.len(), |n| auth_start + n);
                (auth_end, Some((auth_start, auth_end)))
            }
            None => (0, None),
        };
        let (frag_at, query_at) = {
            let frag = url[before_path..]
                .find('#')
                .map_or(url.len(), |n| before_path + n);
            let query = url[before_path..frag].find('?').map(|n| before_path + n);
            (frag, query)
        };
        let path_end = query_at.unwrap_or(frag_at);

        let userinfo = rest.and_then(|(a, b)| url[a..b].rfind('@').map(|n| (a, a + n)));
        let userinfo = userinfo.filter(|&(a, b)| &url[a..b] != REDACTED);
        let path = self.redact_path(&url[before_path..path_end]);
        let query = query_at.map(|q| self.redact_query(&url[q + 1..frag_at]));
        let fragment = (frag_at < url.len()).then(|| self.redact_query(&url[frag_at + 1..]));

        let changed = userinfo.is_some()
            || matches!(path, Cow::Owned(_))
            || matches!(query, Some(Cow::Owned(_)))
            || matches!(fragment, Some(Cow::Owned(_)));
        if !changed {
            return Cow::Borrowed(url);
        }
        let mut out = String::with_capacity(url.len() + 8);
        match userinfo {
            Some((a, b)) => {
                out.push_str(&url[..a]);
                out.push_str(REDACTED);
                out.push_str(&url[b..before_path]);
            }
            None => out.push_str(&url[..before_path]),
        }
        out.push_str(&path);
        if let Some(q) = query {
            out.push('?');
            out.push_str(&q);
        }
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(&f);
        }
        Cow::Owned(out)
    }

    /// Free text (an error message, a log body) with every URL in it
    /// redacted as [`redact_url`](Self::redact_url) does. A URL is
    /// recognised by `scheme://` and ends at whitespace, a quote, `<`, `>`
    /// or `)`. Borrowed (and cheap: one substring search) when the text has
    /// no `://`.
    pub fn redact_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !text.contains("://") {
            return Cow::Borrowed(text);
        }
        let mut out: Option<String> = None;
        let mut done = 0;
        let mut from = 0;
        while let Some(n) = text[from..].find("://") {
            let sep = from + n;
            let start = text[..sep]
                .char_indices()
                .rev()
                .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
                .map_or(0, |(p, c)| p + c.len_utf8())
                .max(done);
            let end = text[sep + 3..]
                .find(|c: char| {
                    c.is_whitespace()
                        || c.is_control()
                        || matches!(
                            c,
                            '"' | '\'' | '<' | '>' | ')' | '`' | '{' | '}' | '|' | '\\'
                        )
                })
                .map_or(text.len(), |p| sep + 3 + p);
            if start < sep
                && let Cow::Owned(redacted) = self.redact_url(&text[start..end])
            {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len() + 16));
                o.push_str(&text[done..start]);
                o.push_str(&redacted);
                done = end;
            }
            from = end.max(sep + 3);
        }
        match out {
            None => Cow::Borrowed(text),
            Some(mut o) => {
                o.push_str(&text[done..]);
                Cow::Owned(o)
            }
        }
    }

    /// The value to record for a string field `name = value`: `REDACTED`
    /// when the name is secret, else the value with URLs redacted.
    pub fn redact_field<'a>(&self, name: &str, value: &'a str) -> Cow<'a, str> {
        if self.is_secret_name(name) {
            Cow::Borrowed(REDACTED)
        } else {
            self.redact_text(value)
        }
    }
}

/// `None` when the key has no letter or digit. Keeps a leading `=`.
fn normalise_key(key: &str) -> Option<String> {
    let key = key.trim();
    let (exact, body) = match key.strip_prefix('=') {
        Some(b) => (true, b),
        None => (false, key),
    };
    let mut out = String::with_capacity(body.len() + 1);
    if exact {
        out.push('=');
    }
    for c in body.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !c.is_ascii() {
            out.push(c);
        }
    }
    (out.len() > usize::from(exact)).then_some(out)
}

/// The next normalised byte of `name` walking backwards from `*i`.
#[inline]
fn prev_normalised(name: &[u8], i: &mut usize) -> Option<u8> {
    while *i > 0 {
        *i -= 1;
        let c = name[*i];
        if c.is_ascii_alphanumeric() {
            return Some(c.to_ascii_lowercase());
        }
        if !c.is_ascii() {
            return Some(c);
        }
    }
    None
}

/// A trie of the reversed normalised keys.
#[derive(Clone, PartialEq, Eq, Default)]
struct Trie {
    nodes: Vec<Node>,
    /// The root's children by byte (0: none; the root is never a child).
    /// WHY: most names are rejected at the first byte, and the root has a
    /// child for nearly every letter a key ends with, so the linear search
    /// of the other nodes cost most there (every span attribute name and
    /// every log field is checked).
    root: Vec<u32>,
}

#[derive(Clone, PartialEq, Eq, Default)]
struct Node {
    /// Sorted by byte.
    children: Vec<(u8, u32)>,
    /// A key ends here and matches any name ending with it.
    suffix: bool,
    /// A key ends here and matches only the whole name.
    exact: bool,
}

impl Trie {
    fn build(keys: &[String]) -> Self {
        let mut t = Trie {
            nodes: vec![Node::default()],
            root: Vec::new(),
        };
        for key in keys {
            let (exact, body) = match key.strip_prefix('=') {
                Some(b) => (true, b),
                None => (false, key.as_str()),
            };
            let mut node = 0usize;
            for &b in body.as_bytes().iter().rev() {
                node = match t.nodes[node].children.binary_search_by_key(&b, |c| c.0) {
                    Ok(i) => t.nodes[node].children[i].1 as usize,
                    Err(i) => {
                        let new = t.nodes.len();
                        t.nodes.push(Node::default());
                        t.nodes[node].children.insert(i, (b, new as u32));
                        new
                    }
                };
            }
            if exact {
                t.nodes[node].exact = true;
            } else {
                t.nodes[node].suffix = true;
            }
        }
        t.root = vec![0; 256];
        for &(b, child) in &t.nodes[0].children {
            t.root[usize::from(b)] = child;
        }
        t
    }

    fn matches(&self, name: &[u8]) -> bool {
        let mut node = 0usize;
        let mut i = name.len();
        while let Some(b) = prev_normalised(name, &mut i) {
            let next = if node == 0 {
                self.root.get(usize::from(b)).copied().unwrap_or(0)
            } else {
                let children = &self.nodes[node].children;
                children.iter().find(|c| c.0 == b).map_or(0, |c| c.1)
            };
            if next == 0 {
                return false;
            }
            node = next as usize;
            let n = &self.nodes[node];
            if n.suffix {
                return true;
            }
            if n.exact {
                let mut j = i;
                if prev_normalised(name, &mut j).is_none() {
                    return true;
                }
            }
        }
        false
    }
}

/// Percent-decodes `s` (and `+` as space); borrowed when there is nothing
/// to decode.
pub(crate) fn percent_decode_lossy(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

static CURRENT: OnceLock<Redaction> = OnceLock::new();
static DEFAULT: OnceLock<Redaction> = OnceLock::new();

/// The policy in effect: the one [`install`](crate::install) resolved, or
/// the default before that.
pub fn current() -> &'static Redaction {
    match CURRENT.get() {
        Some(r) => r,
        None => DEFAULT.get_or_init(Redaction::new),
    }
}

/// Makes `policy` the one [`current`] returns; only the first call counts.
pub(crate) fn set_current(policy: Redaction) {
    let _ = CURRENT.set(policy);
}

#[cfg(test)]
mod tests;
