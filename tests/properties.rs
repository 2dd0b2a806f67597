//! Property tests of the pure parsing and formatting code, through the crate's public API.
//!
//! Every property runs a fixed number of cases ([`CASES`]) so `cargo test` stays fast and
//! its run time predictable. Inputs that arrive from outside (headers, paths, bodies) must
//! never panic; the formats must round trip.

use edge_scheduler::domain::{bearer_token, percent_decode, UserId, MAX_TOKEN_LEN};
use edge_scheduler::errors::ErrorStyle;
use edge_scheduler::jobs::{parse_completion, parse_registration, CompletionError};
use edge_scheduler::json::Fields;
use edge_scheduler::providers::{PathId, Provider};
use edge_scheduler::routes::{match_route, OperatorOp, PublicOp, Route};
use edge_scheduler::time::{format_elapsed, format_iso_millis, parse_iso8601};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const CASES: u32 = 512;

/// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the four-digit years.
const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_300_799_999;
/// A fixed "now" for registrations (2025-04-18T18:13:20Z).
const NOW: i64 = 1_745_000_000_000;
/// The largest integer a JSON number keeps exactly in JavaScript.
const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

fn provider() -> impl Strategy<Value = Provider> {
    let all: Vec<Provider> = Provider::all().collect();
    (0..all.len()).prop_map(move |i| all[i])
}

fn named(name: &str) -> Provider {
    Provider::parse(name).unwrap()
}

/// What the runtime's URL parser says, for the pure tests: every URL is fine.
fn any_url(_: &str) -> Result<(), String> {
    Ok(())
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
        Just("waitSeconds".to_owned()),
        Just("videoId".to_owned()),
        Just("imageId".to_owned()),
        Just("taskId".to_owned()),
        Just("type".to_owned()),
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
        prop_oneof![Just("video"), Just("image"), Just("music")]
            .prop_map(|t| Value::String(t.to_owned())),
        (0i64..=70).prop_map(Value::from),
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

/// Percent-encodes as JavaScript's `encodeURIComponent` does (what clients use to put an
/// id in a path): `.` and a few other marks stay as they are.
fn encode_uri_component(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What the WHATWG URL parser does to a path segment: `None` when it is a dot segment
/// (`.`, `..`, `%2e` forms in any case), which normalisation removes from the path.
fn survives_normalisation(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    !matches!(
        lower.as_str(),
        "." | "%2e" | ".." | ".%2e" | "%2e." | "%2e%2e"
    )
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
        let _ = UserId::parse(&text);
        let _ = p.check_account(&text);
        let _ = p.path_id(&text);
        let _ = parse_iso8601(&text);
        let _ = parse_registration(p, &text, NOW, &any_url);
        let _ = parse_completion(&text);
        let _ = Fields::parse(&text);
    }

    /// ... nor on arbitrary bytes as a request body.
    #[test]
    fn body_parsers_never_panic_on_arbitrary_bytes(
        body in prop::collection::vec(any::<u8>(), 0..256),
        p in provider(),
    ) {
        // Bodies reach the parsers as UTF-8 text (anything else is a 400 before).
        let text = String::from_utf8_lossy(&body);
        let _ = parse_registration(p, &text, NOW, &any_url);
        let _ = parse_completion(&text);
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
    /// exactly under `/v1/dreamina/`, with CORS on public paths.
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
                    Just("US%3Aa%40x.com"), Just("12345"), Just("runway"), Just("v2"),
                    Just("pixverse"), Just("minimax"), Just("runwayml"), Just("live"),
                    Just("pause"), Just("resume"), Just("progress"), Just("retry"),
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
                prop_assert_eq!(e.public, path.starts_with("/v1/") || path.starts_with("/v2/"));
            }
        }
    }

    /// Any JSON body (any value, or an object of registration fields with values of any
    /// type) is a registration or a message saying what is wrong: never a panic.
    #[test]
    fn registration_is_ok_or_an_error_message(
        body in prop_oneof![json_value(), registration_like()],
        p in provider(),
    ) {
        let text = serde_json::to_string(&body).unwrap();
        match parse_registration(p, &text, NOW, &any_url) {
            Ok(reg) => {
                prop_assert!(reg.job.id.is_some() || p.generate_id("u", "a", NOW, 1).is_some());
                prop_assert!(reg.started_ms.is_none_or(|s| s <= NOW + 5 * 60 * 1000));
                prop_assert!((0..=60_000).contains(&reg.wait_ms));
            }
            Err(message) => prop_assert!(!message.is_empty()),
        }
    }

    /// A well-formed registration is always accepted with what was sent.
    #[test]
    fn valid_kling_registrations_are_accepted(
        id in 1u64..=MAX_SAFE_INTEGER,
        email in "[a-z0-9._-]{1,16}@[a-z0-9-]{1,16}\\.[a-z]{2,6}",
        reply_ref in "[ -~]{0,1024}",
        started in MIN_MS..=NOW,
        wait in 0i64..=60,
    ) {
        let body = json!({
            "id": id,
            "email": email,
            "replyUrl": "https://example.com/hook",
            "replyRef": reply_ref,
            "started": format_iso_millis(started),
            "waitSeconds": wait,
        });
        let reg = parse_registration(named("kling"), &body.to_string(), NOW, &any_url).unwrap();
        prop_assert_eq!(reg.job.id, Some(id.to_string()));
        prop_assert_eq!(reg.job.account.as_deref(), Some(email.as_str()));
        prop_assert_eq!(reg.started_ms, Some(started));
        prop_assert_eq!(reg.reply_ref, Some(reply_ref));
        prop_assert_eq!(reg.wait_ms, wait * 1000);
    }

    /// Every id a registration accepts can be named again: percent-encoded the way
    /// clients do, it survives URL normalisation (no dot segment), routes to a cancel of
    /// exactly that id, and the provider reads it back as that id. The same holds on the
    /// operator's completion path.
    #[test]
    fn every_accepted_id_is_reachable_through_its_encoded_path(
        id in prop_oneof![
            "[ -~]{1,12}",
            prop_oneof![Just("."), Just(".."), Just("..."), Just("%2e"), Just(".%2E"), Just("a/b"), Just("available"), Just("live")]
                .prop_map(str::to_owned),
            (1u64..=MAX_SAFE_INTEGER).prop_map(|n| n.to_string()),
        ],
        p in provider(),
    ) {
        let body = match p.name() {
            "kling" => match id.parse::<u64>() {
                Ok(n) => json!({"id": n}),
                Err(_) => json!({"id": id}),
            },
            "dreamina" => json!({"jobid": id, "submitId": "s", "model": "m"}),
            "minimax" => json!({"videoId": id}),
            "pixverse" => json!({"id": id, "type": "video"}),
            _ => json!({"taskId": id}),
        };
        let Ok(reg) = parse_registration(p, &body.to_string(), NOW, &any_url) else {
            return Ok(());
        };
        let stored = reg.job.id.unwrap();
        for encode in [encode_uri_component as fn(&str) -> String, percent_encode] {
            let segment = encode(&stored);
            prop_assert!(survives_normalisation(&segment), "{:?} is a dot segment", segment);
            let path = format!("{}/{}", p.public_path(), segment);
            let expected = Route::Public { provider: p, op: PublicOp::Cancel(stored.clone()) };
            prop_assert_eq!(match_route("DELETE", &path), Ok(expected));
            prop_assert_eq!(p.path_id(&stored), PathId::Id(stored.clone()));
            let complete = format!("/admin/v1/users/u/{}/jobs/{}/complete", p.name(), segment);
            let routed = match_route("POST", &complete).map(|r| match r {
                Route::Operator { op: OperatorOp::CompleteJob(id), .. } => Some(id),
                _ => None,
            });
            prop_assert_eq!(routed, Ok(Some(stored.clone())));
        }
    }

    /// The body reader accepts exactly the JSON objects serde_json accepts, on valid
    /// objects and on objects broken at a random place.
    #[test]
    fn the_body_reader_agrees_with_serde_json(
        value in prop::collection::btree_map(any::<String>(), json_value(), 0..5),
        cut in any::<prop::sample::Index>(),
        junk in "[ -~]{0,3}",
    ) {
        let text = serde_json::to_string(&value).unwrap();
        let fields = Fields::parse(&text);
        prop_assert!(fields.is_ok(), "{}", text);
        for (k, v) in &value {
            let raw = fields.as_ref().unwrap().raw(k);
            if v.is_null() {
                prop_assert_eq!(raw, None);
            } else {
                let written = serde_json::to_string(v).unwrap();
                prop_assert_eq!(raw, Some(written.as_str()));
            }
        }
        let mut broken = text.clone();
        let at = cut.index(broken.len() + 1);
        if broken.is_char_boundary(at) {
            broken.insert_str(at, &junk);
            let serde = serde_json::from_str::<Map<String, Value>>(&broken);
            // serde_json refuses a number beyond f64 (`1e+6236`, when the junk lands in an
            // exponent); JSON's grammar allows it and the reader, which never makes a
            // float of it, does too: only the grammar is compared.
            let out_of_f64 = serde.as_ref().is_err_and(|e| e.to_string().contains("number out of range"));
            if !out_of_f64 {
                prop_assert_eq!(Fields::parse(&broken).is_ok(), serde.is_ok(), "{}", broken);
            }
        }
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
        let text = serde_json::to_string(&body).unwrap();
        match parse_completion(&text) {
            Ok(c) => prop_assert!(["completed", "failed"].contains(&c.status.as_str())),
            Err(CompletionError::Invalid(m)) => prop_assert!(!m.is_empty()),
            Err(CompletionError::TooLarge) => prop_assert!(text.len() > 256 * 1024),
        }
    }
}
