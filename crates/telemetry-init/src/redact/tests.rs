use super::*;

#[test]
fn spellings_of_one_key_all_match() {
    let p = Redaction::new();
    for name in [
        "password",
        "PASSWORD",
        "user_password",
        "user-password",
        "user.password",
        "userPassword",
        "user[password]",
        "user[Password][]",
        "db.password",
        "x_api_key",
        "X-Api-Key",
        "apiKey",
        "api.key",
        "refreshToken",
        "refresh-token",
        "access_token",
        "id_token",
        "X-Auth-Token",
        "http.request.header.authorization",
        "Proxy-Authorization",
        "http.request.header.cookie",
        "set-cookie",
        "JSESSIONID",
        "PHPSESSID",
        "session_id",
        "client_secret",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "card_number",
        "creditCardNumber",
        "cvv",
        "ssn",
        "user.ssn",
        "national_id",
        "tax-id",
        "key",
        "KEY",
        "code",
        "sig",
        "session",
        "pin",
        "baggage.token",
    ] {
        assert!(p.is_secret_name(name), "{name} should be secret");
    }
}

#[test]
fn ordinary_names_do_not_match() {
    let p = Redaction::new();
    for name in [
        "",
        "monkey",
        "http.response.status_code",
        "rpc.grpc.status_code",
        "zipcode",
        "error.type",
        "url.query",
        "url.path",
        "url.full",
        "http.route",
        "user_agent.original",
        "gen_ai.usage.input_tokens",
        "max_tokens",
        "sessions",
        "design",
        "keyboard",
        "request_id",
        "user.id",
        "spin",
        "passage",
        "_",
        "[]",
    ] {
        assert!(!p.is_secret_name(name), "{name} should not be secret");
    }
}

#[test]
fn keys_are_added_and_removed() {
    let p = Redaction::new()
        .with_key("customer-email")
        .with_key("=ref")
        .without_key("=code")
        .without_key("token");
    assert!(p.is_secret_name("customerEmail"));
    assert!(p.is_secret_name("billing.customer_email"));
    assert!(p.is_secret_name("REF"));
    assert!(!p.is_secret_name("xref"));
    assert!(!p.is_secret_name("code"));
    assert!(!p.is_secret_name("access_token"));
    assert!(p.is_secret_name("password"));
    // Removing the whole-name form keeps the suffix form apart.
    assert!(
        !Redaction::new()
            .without_key("key")
            .keys()
            .any(|k| k == "key")
    );
    assert!(
        Redaction::new()
            .without_key("key")
            .keys()
            .any(|k| k == "=key")
    );
}

#[test]
fn lists_from_the_environment() {
    let p = Redaction::new()
        .apply_list(" customer_email , -=code,=ref,- token ")
        .unwrap();
    assert!(p.is_secret_name("customer.email"));
    assert!(!p.is_secret_name("code"));
    assert!(p.is_secret_name("ref"));
    assert!(!p.is_secret_name("csrf_token"));
    assert_eq!(Redaction::new().apply_list("a,-__").unwrap_err(), "-__");
    assert_eq!(Redaction::new().apply_list("="), Err("=".to_string()));
    assert_eq!(Redaction::new().apply_list(""), Ok(Redaction::new()));
}

#[test]
fn empty_policy_matches_nothing() {
    let p = Redaction::empty();
    assert!(!p.is_secret_name("password"));
    assert_eq!(p.redact_query("password=x"), "password=x");
    // Userinfo is a credential whatever the list says.
    assert_eq!(p.redact_url("http://u:p@h/"), "http://REDACTED@h/");
}

#[test]
fn queries() {
    let p = Redaction::new();
    assert!(matches!(
        p.redact_query("a=1&b=2"),
        Cow::Borrowed("a=1&b=2")
    ));
    assert_eq!(
        p.redact_query("q=shoes&access_token=abc&API_KEY=k&x_api_key=z&page=2&sig=s&code=c"),
        "q=shoes&access_token=REDACTED&API_KEY=REDACTED&x_api_key=REDACTED&page=2&sig=REDACTED&code=REDACTED"
    );
    assert_eq!(
        p.redact_query("pass%77ord=x&token"),
        "pass%77ord=REDACTED&token"
    );
    assert_eq!(
        p.redact_query("user%5Bpassword%5D=x&user[name]=bob"),
        "user%5Bpassword%5D=REDACTED&user[name]=bob"
    );
    assert_eq!(
        p.redact_query("user[password]=x;sessionId=y"),
        "user[password]=REDACTED;sessionId=REDACTED"
    );
    assert_eq!(p.redact_query("monkey=banana"), "monkey=banana");
    assert_eq!(p.redact_query("token="), "token=");
    assert_eq!(p.redact_query("token=a=b&x"), "token=REDACTED&x");
    assert_eq!(p.redact_query(""), "");
    assert_eq!(p.redact_query("&&token=1&"), "&&token=REDACTED&");
}

#[test]
fn paths() {
    let p = Redaction::new();
    assert!(matches!(p.redact_path("/a/b"), Cow::Borrowed(_)));
    assert_eq!(
        p.redact_path("/cart;jsessionid=ABC123/items;page=2"),
        "/cart;jsessionid=REDACTED/items;page=2"
    );
    assert_eq!(
        p.redact_path("/x;v=1;token=t;sid=9"),
        "/x;v=1;token=REDACTED;sid=REDACTED"
    );
    assert_eq!(p.redact_path("/x;token"), "/x;token");
    assert_eq!(p.redact_path(";"), ";");
}

#[test]
fn urls() {
    let p = Redaction::new();
    assert!(matches!(
        p.redact_url("https://example.com/a?b=1#top"),
        Cow::Borrowed(_)
    ));
    assert_eq!(
        p.redact_url("https://bob:hunter2@example.com:8443/p;jsessionid=1?x=1&password=2#access_token=3&state=4"),
        "https://REDACTED@example.com:8443/p;jsessionid=REDACTED?x=1&password=REDACTED#access_token=REDACTED&state=4"
    );
    assert_eq!(p.redact_url("http://token@h"), "http://REDACTED@h");
    assert_eq!(p.redact_url("http://a:b@c@h/x"), "http://REDACTED@h/x");
    assert_eq!(p.redact_url("/cb?code=abc"), "/cb?code=REDACTED");
    // An `@` in the path is not userinfo.
    assert_eq!(p.redact_url("http://h/users/@me"), "http://h/users/@me");
    assert_eq!(p.redact_url("http://REDACTED@h/"), "http://REDACTED@h/");
}

#[test]
fn text_with_urls() {
    let p = Redaction::new();
    assert!(matches!(p.redact_text("plain text"), Cow::Borrowed(_)));
    assert!(matches!(
        p.redact_text("see http://example.com/a?b=1."),
        Cow::Borrowed(_)
    ));
    assert_eq!(
        p.redact_text(
            "error sending request for url (http://admin:s3cret@10.0.0.1:9/x?token=abc&q=1): connection refused"
        ),
        "error sending request for url (http://REDACTED@10.0.0.1:9/x?token=REDACTED&q=1): connection refused"
    );
    assert_eq!(
        p.redact_text("a \"https://u:p@h/\" and 'http://h/?api_key=k' and <ftp://x:y@z>"),
        "a \"https://REDACTED@h/\" and 'http://h/?api_key=REDACTED' and <ftp://REDACTED@z>"
    );
    assert_eq!(p.redact_text("://nothing"), "://nothing");
    assert_eq!(p.redact_text("é://u:p@h"), "é://u:p@h");
    assert_eq!(p.redact_text("xé+http://u:p@h"), "xé+http://REDACTED@h");
    assert_eq!(
        p.redact_text("http://u:p@a http://v:q@b"),
        "http://REDACTED@a http://REDACTED@b"
    );
}

#[test]
fn fields() {
    let p = Redaction::new();
    assert_eq!(p.redact_field("password", "x"), REDACTED);
    assert_eq!(
        p.redact_field("downstream", "http://u:p@h/"),
        "http://REDACTED@h/"
    );
    assert!(matches!(
        p.redact_field("user", "bob"),
        Cow::Borrowed("bob")
    ));
}

#[test]
fn current_is_the_default_before_install() {
    assert!(current().is_secret_name("password"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every default key, written in any case and with separators
        /// anywhere, is matched as a whole name and as a suffix.
        #[test]
        fn separators_and_case_never_matter(
            idx in 0..DEFAULT_KEYS.len(),
            seps in proptest::collection::vec(prop_oneof![Just(""), Just("_"), Just("-"), Just("."), Just("["), Just("]"), Just(" ")], 0..40),
            upper in proptest::collection::vec(any::<bool>(), 0..40),
            prefix in "[a-z]{0,6}",
        ) {
            let key = DEFAULT_KEYS[idx];
            let (exact, body) = match key.strip_prefix('=') { Some(b) => (true, b), None => (false, key) };
            let mut spelled = String::new();
            for (i, c) in body.chars().enumerate() {
                spelled.push_str(seps.get(i).copied().unwrap_or(""));
                if upper.get(i).copied().unwrap_or(false) { spelled.push(c.to_ascii_uppercase()) } else { spelled.push(c) }
            }
            let p = Redaction::new();
            prop_assert!(p.is_secret_name(&spelled), "{spelled}");
            if !exact {
                let prefixed = format!("{prefix}.{spelled}");
                prop_assert!(p.is_secret_name(&prefixed), "{prefixed}");
            }
        }

        /// Redaction never panics, returns the input when nothing is
        /// secret, and never leaves a secret value it could see.
        #[test]
        fn redaction_is_total(s in "\\PC{0,80}") {
            let p = Redaction::new();
            let _ = p.is_secret_name(&s);
            let _ = p.redact_query(&s);
            let _ = p.redact_path(&s);
            let _ = p.redact_url(&s);
            let t = p.redact_text(&s);
            if !s.contains("://") { prop_assert_eq!(&*t, &*s); }
        }

        #[test]
        fn query_values_of_secret_keys_are_gone(
            value in "[A-Za-z0-9]{1,12}",
            name in prop_oneof![Just("token"), Just("user[password]"), Just("apiKey"), Just("JSESSIONID")],
            other in "[a-z]{1,5}=[a-z]{1,5}",
        ) {
            // `other` is meant to be a harmless pair: a generated key that is
            // itself a secret name (`cvc`, `pin`, …) is not this property's case.
            prop_assume!(Redaction::new().redact_query(&other) == other.as_str());
            let q = format!("{other}&{name}={value}");
            let r = Redaction::new().redact_query(&q).into_owned();
            prop_assert_eq!(r, format!("{other}&{name}=REDACTED"));
        }
    }
}

/// The patterns `alloy/config.alloy` uses, generated from [`DEFAULT_KEYS`]:
/// the collector redacts the same keys for services that are not ours.
/// Under `(?i)`, `[^a-z0-9]` is "not a letter or digit", as the Rust
/// normalisation has it; `_` in a key becomes "any separators".
/// Returns (attribute key pattern, `url.query`, `url.full` query, path parameter).
fn alloy_patterns() -> [String; 4] {
    let words = |sep: &str, exact: bool| -> String {
        DEFAULT_KEYS
            .iter()
            .filter(|k| k.starts_with('=') == exact)
            .map(|k| k.trim_start_matches('=').replace('_', sep))
            .collect::<Vec<_>>()
            .join("|")
    };
    let sep = "[^a-z0-9]*";
    let key = format!(
        "(?i)(?:(?:{})|^{sep}(?:{})){sep}$",
        words(sep, false),
        words(sep, true)
    );
    // A parameter name (no `&;#=/?`) ending in a key (or being a whole-name
    // key), then `=`.
    let qsep = "[^a-z0-9&;#=/?]*";
    let name = format!(
        "(?:[^&;#=/?]*(?:{})|{qsep}(?:{})){qsep}=",
        words(qsep, false),
        words(qsep, true)
    );
    [
        key,
        format!("(?i)((?:^|[&;]){name})[^&;#]*"),
        format!("(?i)([?&]{name})[^&#]*"),
        format!("(?i)(;{name})[^;/?#]*"),
    ]
}

#[test]
fn alloy_redacts_the_same_keys() {
    let config = include_str!("../../../../alloy/config.alloy");
    let [key, query, full, param] = alloy_patterns();
    assert!(
        config.contains(&format!("pattern = \"{key}\"")),
        "alloy/config.alloy must delete attributes matching\n{key}"
    );
    for (attr, pattern) in [
        ("url.query", &query),
        ("url.full", &full),
        ("url.full", &param),
        ("url.path", &param),
    ] {
        let statement =
            format!("`replace_pattern(attributes[\"{attr}\"], \"{pattern}\", \"${{1}}REDACTED\")`");
        assert_eq!(
            config.matches(&statement).count(),
            2,
            "alloy/config.alloy must have, for spans and for logs:\n{statement}"
        );
    }
}
