//! Property tests of the pure parsing and formatting code, through the crate's public API.
//!
//! Every property runs a fixed number of cases ([`CASES`]) so `cargo test` stays fast and
//! its run time predictable. Inputs that arrive from outside (headers, paths, bodies) must
//! never panic; the formats must round trip.

use edge_scheduler::domain::{
    bearer_token, percent_decode, validate_reply_url, AccountName, JobId, Provider, UserId,
    MAX_SAFE_INTEGER, MAX_TOKEN_LEN,
};
use edge_scheduler::errors::ErrorStyle;
use edge_scheduler::jobs::{parse_completion, parse_registration};
use edge_scheduler::routes::match_route;
use edge_scheduler::time::{format_elapsed, format_iso_millis, parse_iso8601};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const CASES: u32 = 512;

/// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the four-digit years.
const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_300_799_999;
/// A fixed "now" for registrations (2025-04-18T18:13:20Z).
const NOW: i64 = 1_745_000_000_000;

fn provider() -> impl Strategy<Value = Provider> {
    prop_oneof![Just(Provider::Kling), Just(Provider::Dreamina)]
}

/// Arbitrary JSON, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON object whose keys are mostly the registration fields, with values of any type
/// (and often of the right type), so parsing gets past the first field.
fn registration_like() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("id".to_owned()),
        Just("email".to_owned()),
        Just("account".to_owned()),
        Just("submitId".to_owned()),
        Just("model".to_owned()),
        Just("jobid".to_owned()),
        Just("replyUrl".to_owned()),
        Just("replyRef".to_owned()),
        Just("started".to_owned()),
        any::<String>(),
    ];
    let value = prop_oneof![
        json_value(),
        (1u64..=MAX_SAFE_INTEGER).prop_map(Value::from),
        "[a-z]{1,8}@[a-z]{1,8}\\.com".prop_map(Value::String),
        "[A-Z]{2}:[a-z]{1,8}@[a-z]{1,8}\\.com".prop_map(Value::String),
        "https?://[a-z]{1,12}(:[0-9]{1,5})?/[ -~]{0,20}".prop_map(Value::String),
        (MIN_MS..MAX_MS).prop_map(|ms| Value::String(format_iso_millis(ms))),
        "[ -~]{0,40}".prop_map(Value::String),
    ];
    prop::collection::btree_map(key, value, 0..9)
        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>()))
}

/// Percent-encodes every byte that is not an RFC 3986 unreserved character.
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `^\d{2,}:\d{2}$` without a regex crate.
fn is_elapsed_shape(text: &str) -> bool {
    match text.split_once(':') {
        Some((minutes, seconds)) => {
            minutes.len() >= 2
                && minutes.bytes().all(|b| b.is_ascii_digit())
                && seconds.len() == 2
                && seconds.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$` without a regex crate.
fn is_iso_millis_shape(text: &str) -> bool {
    let shape = b"dddd-dd-ddTdd:dd:dd.dddZ";
    text.len() == shape.len()
        && text.bytes().zip(shape.iter()).all(|(c, &s)| match s {
            b'd' => c.is_ascii_digit(),
            other => c == other,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// No parser panics on any string.
    #[test]
    fn parsers_never_panic_on_arbitrary_text(text in any::<String>(), p in provider()) {
        let _ = bearer_token(Some(&text));
        let _ = percent_decode(&text);
        let _ = validate_reply_url(&text);
        let _ = UserId::parse(&text);
        let _ = AccountName::parse(p, &text);
        let _ = JobId::parse_for(p, &text);
        let _ = parse_iso8601(&text);
        let _ = parse_registration(p, text.as_bytes(), NOW);
        let _ = parse_completion(text.as_bytes());
    }

    /// ... nor on arbitrary bytes as a request body.
    #[test]
    fn body_parsers_never_panic_on_arbitrary_bytes(
        body in prop::collection::vec(any::<u8>(), 0..256),
        p in provider(),
    ) {
        let reg = parse_registration(p, &body, NOW);
        prop_assert!(reg.as_ref().err().is_none_or(|e| e.status() == 400), "{:?}", reg.err());
        let done = parse_completion(&body);
        prop_assert!(done.as_ref().err().is_none_or(|e| [400, 413].contains(&e.status())));
    }

    /// Any instant with a four-digit year formats as `YYYY-MM-DDTHH:MM:SS.mmmZ` and parses
    /// back to the same millisecond.
    #[test]
    fn iso_millis_round_trips(ms in MIN_MS..=MAX_MS) {
        let text = format_iso_millis(ms);
        prop_assert!(is_iso_millis_shape(&text), "{}", text);
        prop_assert_eq!(parse_iso8601(&text), Ok(ms), "{}", text);
    }

    /// The same instant written with an offset parses to the same millisecond.
    #[test]
    fn iso_offsets_are_applied(ms in (MIN_MS + 86_400_000)..=(MAX_MS - 86_400_000), offset_min in -(23 * 60 + 59)..=(23 * 60 + 59i64)) {
        let local = format_iso_millis(ms + offset_min * 60_000);
        let sign = if offset_min < 0 { '-' } else { '+' };
        let abs = offset_min.abs();
        let text = format!("{}{}{:02}:{:02}", &local[..local.len() - 1], sign, abs / 60, abs % 60);
        prop_assert_eq!(parse_iso8601(&text), Ok(ms), "{}", text);
    }

    /// `elapsed` is `^\d{2,}:\d{2}$` and decodes back to the seconds; negatives show 00:00.
    #[test]
    fn elapsed_has_the_contract_shape_and_decodes(seconds in -1_000_000i64..=100_000_000_000i64) {
        let text = format_elapsed(seconds);
        prop_assert!(is_elapsed_shape(&text), "{}", text);
        let (m, s) = text.split_once(':').unwrap();
        let (m, s): (i64, i64) = (m.parse().unwrap(), s.parse().unwrap());
        prop_assert!(s < 60);
        prop_assert_eq!(m * 60 + s, seconds.max(0));
    }

    /// Percent-encoding any string and decoding it gives the string back; unescaped text
    /// without `%` decodes to itself.
    #[test]
    fn percent_encoding_round_trips(text in any::<String>()) {
        prop_assert_eq!(percent_decode(&percent_encode(&text)), Ok(text.clone()));
        if !text.contains('%') {
            prop_assert_eq!(percent_decode(&text), Ok(text));
        }
    }

    /// `Bearer <token>` with the scheme in any case and any blanks around and between
    /// yields the token; tokens over 512 characters or with other characters do not.
    #[test]
    fn bearer_header_round_trips(
        token in "[!-~]{1,512}",
        upper in prop::collection::vec(any::<bool>(), 6),
        lead in "[ \t]{0,3}",
        gap in "[ \t]{1,3}",
        trail in "[ \t]{0,3}",
    ) {
        let scheme: String = "bearer"
            .chars()
            .zip(upper)
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
            .collect();
        let header = format!("{lead}{scheme}{gap}{token}{trail}");
        prop_assert_eq!(bearer_token(Some(&header)), Some(token.as_str()));
        let long = format!("{scheme} {token}{}", "x".repeat(MAX_TOKEN_LEN + 1 - token.len()));
        prop_assert_eq!(bearer_token(Some(&long)), None);
        let spaced = format!("{scheme} {token} x");
        prop_assert_eq!(bearer_token(Some(&spaced)), None);
    }

    /// Routing never panics and fails only with 400, 404 or 405, in the Dreamina shape
    /// exactly under `/v1/dreamina/`.
    #[test]
    fn match_route_fails_only_with_400_404_405(
        method in prop_oneof![
            Just("GET".to_owned()), Just("POST".to_owned()), Just("PUT".to_owned()),
            Just("DELETE".to_owned()), Just("OPTIONS".to_owned()), Just("patch".to_owned()),
            "[A-Za-z]{0,8}", any::<String>(),
        ],
        path in prop_oneof![
            any::<String>(),
            prop::collection::vec(
                prop_oneof![
                    Just("v1"), Just("admin"), Just("kling"), Just("dreamina"), Just("scheduler"),
                    Just("available"), Just("users"), Just("accounts"), Just("jobs"),
                    Just("complete"), Just("webhooks"), Just("tokens"), Just("revoke"),
                    Just("openapi.json"), Just(""), Just("%"), Just("%zz"), Just("%C3"),
                    Just("US%3Aa%40x.com"), Just("12345"), Just("runway"),
                ].prop_map(str::to_owned),
                0..9,
            ).prop_map(|segments| format!("/{}", segments.join("/"))),
        ],
    ) {
        match match_route(&method, &path) {
            Ok(_) => {}
            Err(e) => {
                let status = e.error.status();
                prop_assert!([400, 404, 405].contains(&status), "{} {} -> {}", method, path, status);
                let dreamina = path.starts_with("/v1/dreamina/") || path == "/v1/dreamina";
                prop_assert_eq!(e.style == ErrorStyle::Plain, dreamina);
                prop_assert_eq!(e.public, path.starts_with("/v1/"));
            }
        }
    }

    /// Any JSON body (any value, or an object of registration fields with values of any
    /// type) is a registration or a 400: never a panic, never another status.
    #[test]
    fn registration_is_ok_or_400(
        body in prop_oneof![json_value(), registration_like()],
        p in provider(),
    ) {
        let text = serde_json::to_vec(&body).unwrap();
        match parse_registration(p, &text, NOW) {
            Ok(reg) => {
                if p == Provider::Kling {
                    prop_assert!(reg.id.is_some());
                } else {
                    prop_assert!(reg.submit_id.is_some() && reg.model.is_some());
                }
                prop_assert!(reg.started_ms <= NOW + 5 * 60 * 1000);
            }
            Err(e) => prop_assert_eq!(e.status(), 400, "{}", body),
        }
    }

    /// A well-formed registration is always accepted with what was sent.
    #[test]
    fn valid_kling_registrations_are_accepted(
        id in 1u64..=MAX_SAFE_INTEGER,
        email in "[a-z0-9._-]{1,16}@[a-z0-9-]{1,16}\\.[a-z]{2,6}",
        reply_ref in "[ -~]{0,1024}",
        started in MIN_MS..=NOW,
    ) {
        let body = json!({
            "id": id,
            "email": email,
            "replyUrl": "https://example.com/hook",
            "replyRef": reply_ref,
            "started": format_iso_millis(started),
        });
        let reg = parse_registration(Provider::Kling, body.to_string().as_bytes(), NOW).unwrap();
        prop_assert_eq!(reg.id.as_ref().map(|i| i.as_str().to_owned()), Some(id.to_string()));
        prop_assert_eq!(reg.account.as_ref().map(|a| a.as_str()), Some(email.as_str()));
        prop_assert_eq!(reg.started_ms, started);
        prop_assert_eq!(reg.reply_ref, Some(reply_ref));
    }

    /// Any JSON body to a completion is Ok, a 400 or (a large `result`) a 413.
    #[test]
    fn completion_is_ok_400_or_413(
        body in prop_oneof![
            json_value(),
            (prop_oneof![Just("completed"), Just("failed"), Just("done")], json_value())
                .prop_map(|(s, r)| json!({"status": s, "result": r})),
        ],
    ) {
        let text = serde_json::to_vec(&body).unwrap();
        match parse_completion(&text) {
            Ok(c) => prop_assert!(["completed", "failed"].contains(&c.status.as_str())),
            Err(e) => prop_assert!([400, 413].contains(&e.status()), "{}", body),
        }
    }
}
