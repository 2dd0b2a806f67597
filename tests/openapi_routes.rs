//! openapi.yaml and the router agree, checked natively (no worker running).
//!
//! - Every documented operation (method, path template), instantiated with sample
//!   parameters, is a route of `routes::match_route` (never its 404 or 405), and the one
//!   its path and operationId say it is.
//! - Every route is documented: each provider's public operations (list, available,
//!   live, cancel, and the CORS preflight on each of those paths), every `OperatorOp`
//!   for every provider, the page, the document, the token routes.
//! - On every documented path, the methods the router's 405 allows are the documented
//!   ones (`DELETE …/available` and `…/live` excepted: they cancel jobs so named).
//! - Per provider: the public error responses have the provider's error style, the
//!   `maxJobs` the PUT body allows is the provider's limit, and the public job id is
//!   read by the provider's `path_id` as the document says.
//!
//! The lists of variants below are exhaustive `match`es: a new `Route`, `PublicOp` or
//! `OperatorOp` variant does not compile until it is added here (and so documented).

use std::collections::{BTreeMap, BTreeSet};

use edge_scheduler::errors::{ApiError, ErrorStyle};
use edge_scheduler::providers::{PathId, Provider};
use edge_scheduler::routes::{match_route, OperatorOp, PublicOp, Route};
use serde_json::Value;

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "patch", "head"];
const USER: &str = "12345";

fn doc() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("openapi.yaml is readable");
    serde_yaml::from_str(&text).expect("openapi.yaml is valid YAML")
}

/// One documented operation.
struct Op {
    method: String,
    template: String,
    operation_id: String,
    value: Value,
    /// Path parameters (path-level and operation-level), by name.
    params: BTreeMap<String, Value>,
}

fn resolve<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    let mut node = node;
    while let Some(reference) = node.get("$ref").and_then(Value::as_str) {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local $refs: {reference}"));
        node = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("unresolvable $ref {reference}"));
    }
    node
}

fn operations(doc: &Value) -> Vec<Op> {
    let mut ops = Vec::new();
    for (template, item) in doc["paths"].as_object().expect("paths") {
        let mut path_params = BTreeMap::new();
        for p in item["parameters"].as_array().into_iter().flatten() {
            let p = resolve(doc, p);
            if p["in"] == "path" {
                path_params.insert(p["name"].as_str().unwrap().to_owned(), p.clone());
            }
        }
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let mut params = path_params.clone();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let p = resolve(doc, p);
                if p["in"] == "path" {
                    params.insert(p["name"].as_str().unwrap().to_owned(), p.clone());
                }
            }
            ops.push(Op {
                method: method.to_uppercase(),
                template: template.clone(),
                operation_id: op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {template}: no operationId"))
                    .to_owned(),
                value: op.clone(),
                params,
            });
        }
    }
    ops
}

/// The `{name}` placeholders of a path template, in order.
fn placeholders(template: &str) -> Vec<String> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(str::to_owned)
        .collect()
}

/// The provider a path names (its public path, or the operator path's segment).
fn provider_of(template: &str) -> Option<Provider> {
    if let Some(rest) = template.strip_prefix("/admin/v1/users/{user}/") {
        let name = rest.split('/').next()?;
        return Some(
            Provider::parse(name).unwrap_or_else(|| panic!("{template}: unknown provider {name}")),
        );
    }
    Provider::by_public_path(template).map(|(p, _)| p)
}

/// A percent-encoded sample value for a path parameter, valid for `provider`.
fn sample(name: &str, provider: Option<Provider>) -> String {
    let provider = provider.map(|p| p.name());
    match (name, provider) {
        ("user", _) => USER.to_owned(),
        ("account", Some("dreamina")) => "US%3Aa%40x.com".to_owned(),
        ("account", Some("minimax")) => "acct_1".to_owned(),
        ("account", Some(_)) => "a%40x.com".to_owned(),
        ("task_id", _) => "123456789".to_owned(),
        ("id", Some("kling")) => "123456789".to_owned(),
        ("jobid" | "id", Some(_)) => "j0223%3A1%40x.com".to_owned(),
        ("webhookId", _) => "msg_0123456789abcdef0123456789abcdef".to_owned(),
        _ => panic!("no sample for path parameter {name} ({provider:?}): add one"),
    }
}

fn instantiate(op: &Op, provider: Option<Provider>) -> String {
    let mut path = op.template.clone();
    for name in placeholders(&op.template) {
        path = path.replace(&format!("{{{name}}}"), &sample(&name, provider));
    }
    path
}

/// What a route is, as a comparable key: `page`, `kling list`, `kling op complete_job`…
fn route_key(route: &Route) -> String {
    match route {
        Route::Page
        | Route::OpenApi
        | Route::Preflight
        | Route::IssueToken
        | Route::RevokeToken => route.label().to_owned(),
        Route::Public { provider, .. } => format!("{} {}", provider.name(), route.label()),
        Route::Operator { provider, .. } => format!("{provider} op {}", route.label()),
    }
}

/// Every route kind the router has, for one provider. The matches are exhaustive on
/// purpose: a new variant must be listed here.
fn every_route(provider: Provider) -> Vec<Route> {
    let public_ops = [
        PublicOp::List,
        PublicOp::Available,
        PublicOp::Live,
        PublicOp::Cancel("x".into()),
    ];
    for op in &public_ops {
        match op {
            PublicOp::List | PublicOp::Available | PublicOp::Live | PublicOp::Cancel(_) => {}
        }
    }
    let a = || "a".to_owned();
    let operator_ops = [
        OperatorOp::ListAccounts,
        OperatorOp::PutAccount(a()),
        OperatorOp::DeleteAccount(a()),
        OperatorOp::Pause(a()),
        OperatorOp::Resume(a()),
        OperatorOp::ListJobs,
        OperatorOp::RegisterJob,
        OperatorOp::CompleteJob(a()),
        OperatorOp::Progress(a()),
        OperatorOp::ListWebhooks,
        OperatorOp::RetryWebhooks,
        OperatorOp::RetryWebhook(a()),
    ];
    // Exhaustive: the array above must name every variant once.
    let index = |op: &OperatorOp| match op {
        OperatorOp::ListAccounts => 0,
        OperatorOp::PutAccount(_) => 1,
        OperatorOp::DeleteAccount(_) => 2,
        OperatorOp::Pause(_) => 3,
        OperatorOp::Resume(_) => 4,
        OperatorOp::ListJobs => 5,
        OperatorOp::RegisterJob => 6,
        OperatorOp::CompleteJob(_) => 7,
        OperatorOp::Progress(_) => 8,
        OperatorOp::ListWebhooks => 9,
        OperatorOp::RetryWebhooks => 10,
        OperatorOp::RetryWebhook(_) => 11,
    };
    let indices: BTreeSet<usize> = operator_ops.iter().map(index).collect();
    assert_eq!(indices.len(), operator_ops.len(), "every OperatorOp once");
    let mut routes: Vec<Route> = public_ops
        .into_iter()
        .map(|op| Route::Public { provider, op })
        .collect();
    routes.extend(operator_ops.into_iter().map(|op| Route::Operator {
        user: USER.to_owned(),
        provider: provider.name().to_owned(),
        op,
    }));
    routes
}

/// The routes that belong to no provider. Exhaustive over `Route`.
fn global_routes() -> Vec<Route> {
    let routes = vec![
        Route::Page,
        Route::OpenApi,
        Route::Preflight,
        Route::IssueToken,
        Route::RevokeToken,
    ];
    for r in &routes {
        match r {
            Route::Page
            | Route::OpenApi
            | Route::Preflight
            | Route::IssueToken
            | Route::RevokeToken
            | Route::Public { .. }
            | Route::Operator { .. } => {}
        }
    }
    routes
}

#[test]
fn every_documented_operation_is_a_route() {
    let doc = doc();
    let ops = operations(&doc);
    assert!(ops.len() >= 100, "{} operations", ops.len());
    let mut ids = BTreeSet::new();
    for op in &ops {
        assert!(
            ids.insert(op.operation_id.clone()),
            "duplicate operationId {}",
            op.operation_id
        );
        // Placeholders and declared path parameters agree.
        let names: BTreeSet<String> = placeholders(&op.template).into_iter().collect();
        let declared: BTreeSet<String> = op.params.keys().cloned().collect();
        assert_eq!(
            names, declared,
            "{} {}: path parameters",
            op.method, op.template
        );
        for (name, p) in &op.params {
            assert_eq!(
                p["required"], true,
                "{} {}: {name} must be required",
                op.method, op.template
            );
        }

        let provider = provider_of(&op.template);
        let path = instantiate(op, provider);
        let route = match_route(&op.method, &path).unwrap_or_else(|e| {
            panic!(
                "{} {path} ({}) is not a route: {:?}",
                op.method, op.operation_id, e.error
            )
        });
        match (&route, provider) {
            (Route::Public { provider: p, .. }, Some(expected)) => {
                assert_eq!(*p, expected, "{path}")
            }
            (
                Route::Operator {
                    provider: p, user, ..
                },
                Some(expected),
            ) => {
                assert_eq!(
                    (p.as_str(), user.as_str()),
                    (expected.name(), USER),
                    "{path}"
                );
            }
            (Route::Public { .. } | Route::Operator { .. }, None) => panic!("{path}: no provider"),
            _ => {}
        }
        // The operationId names the provider whose route it is.
        if let (Some(p), false) = (provider, op.method == "OPTIONS") {
            assert!(
                op.operation_id.starts_with(p.name()),
                "{}: operationId should start with {}",
                op.operation_id,
                p.name()
            );
        }
        // Public routes take the user's token, the live view none (its token travels in
        // the socket), operator routes the admin token (the document's default).
        let security = op.value.get("security").unwrap_or(&doc["security"]);
        let expected = match route {
            Route::Public {
                op: PublicOp::Live, ..
            }
            | Route::Page
            | Route::OpenApi
            | Route::Preflight => serde_json::json!([]),
            Route::Public { .. } => serde_json::json!([{ "userToken": [] }]),
            Route::IssueToken | Route::RevokeToken | Route::Operator { .. } => {
                serde_json::json!([{ "adminToken": [] }])
            }
        };
        assert_eq!(
            security, &expected,
            "{} {}: security",
            op.method, op.template
        );
    }
}

#[test]
fn every_route_is_documented() {
    let doc = doc();
    let ops = operations(&doc);
    // Route key -> the documented (method, template)s that reach it.
    let mut documented: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for op in &ops {
        let path = instantiate(op, provider_of(&op.template));
        if let Ok(route) = match_route(&op.method, &path) {
            let key = match &route {
                // The preflight is documented per public path, counted per provider.
                Route::Preflight => {
                    format!("{} preflight", provider_of(&op.template).unwrap().name())
                }
                _ => route_key(&route),
            };
            documented
                .entry(key)
                .or_default()
                .push(format!("{} {}", op.method, op.template));
        }
    }
    let mut missing = Vec::new();
    for route in global_routes() {
        if route != Route::Preflight && !documented.contains_key(&route_key(&route)) {
            missing.push(route_key(&route));
        }
    }
    for provider in Provider::all() {
        for route in every_route(provider) {
            let key = route_key(&route);
            if !documented.contains_key(&key) {
                missing.push(key);
            }
        }
        // The preflight on each of the four public paths.
        let preflights: BTreeSet<&str> = documented
            .get(&format!("{} preflight", provider.name()))
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let base = provider.public_path();
        let item = format!("{base}/{{}}");
        for suffix in ["", "/available", "/live", "/{}"] {
            let want = format!("OPTIONS {base}{suffix}");
            let found = preflights.iter().any(|d| {
                let normalised = erase_names(d);
                normalised == want || (suffix == "/{}" && normalised == format!("OPTIONS {item}"))
            });
            if !found {
                missing.push(want);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes without a documented operation: {missing:#?}"
    );
    // And one operation per route: two documented operations reaching the same route
    // would be a duplicate (or a path the router reads differently).
    for (key, ops) in &documented {
        if !key.ends_with("preflight") {
            assert_eq!(ops.len(), 1, "{key} is documented as {ops:?}");
        }
    }
}

fn erase_names(key: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for c in key.chars() {
        match c {
            '{' => {
                skipping = true;
                out.push_str("{}");
            }
            '}' => skipping = false,
            _ if skipping => {}
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn the_methods_a_405_allows_are_the_documented_ones() {
    let doc = doc();
    let ops = operations(&doc);
    let mut by_path: BTreeMap<&str, (BTreeSet<String>, &Op)> = BTreeMap::new();
    for op in &ops {
        by_path
            .entry(op.template.as_str())
            .or_insert_with(|| (BTreeSet::new(), op))
            .0
            .insert(op.method.clone());
    }
    for (template, (methods, op)) in by_path {
        let path = instantiate(op, provider_of(template));
        let allow = match match_route("PROPFIND", &path) {
            Err(e) => match e.error {
                ApiError::MethodNotAllowed { allow } => allow,
                other => panic!("PROPFIND {path}: {other:?}, not a 405"),
            },
            Ok(route) => panic!("PROPFIND {path} is routed: {route:?}"),
        };
        let mut allowed: BTreeSet<String> = allow.split(", ").map(str::to_owned).collect();
        if template.ends_with("/available") || template.ends_with("/live") {
            // DELETE there cancels a job named `available` / `live` (documented in the
            // info description): the template `…/{id}` documents it.
            assert!(allowed.remove("DELETE"), "{template}: {allow}");
        }
        assert_eq!(allowed, methods, "{template}: Allow is {allow:?}");
    }
}

/// The JSON schema of a response (following `$ref`s), if it has one.
fn response_schema<'a>(doc: &'a Value, response: &'a Value) -> Option<&'a Value> {
    let response = resolve(doc, response);
    let schema = response.pointer("/content/application~1json/schema")?;
    Some(resolve(doc, schema))
}

fn is_coded(doc: &Value, schema: &Value) -> bool {
    if let Some(alternatives) = schema["oneOf"].as_array() {
        return alternatives.iter().all(|s| is_coded(doc, resolve(doc, s)));
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        required.contains(&"error"),
        "error schema without `error`: {schema}"
    );
    required.contains(&"code")
}

#[test]
fn public_errors_have_their_providers_style_and_operator_errors_the_coded_one() {
    let doc = doc();
    for op in operations(&doc) {
        let coded = match provider_of(&op.template) {
            Some(p) if !op.template.starts_with("/admin/") => p.error_style() == ErrorStyle::Coded,
            _ => true,
        };
        for (status, response) in op.value["responses"].as_object().unwrap() {
            let code: u16 = status
                .parse()
                .unwrap_or_else(|_| panic!("{}: status {status}", op.operation_id));
            if code < 400 {
                continue;
            }
            let schema = response_schema(&doc, response).unwrap_or_else(|| {
                panic!(
                    "{} {status}: an error without a JSON schema",
                    op.operation_id
                )
            });
            assert_eq!(
                is_coded(&doc, schema),
                coded,
                "{} {status}: error style",
                op.operation_id
            );
            if coded {
                let codes = &resolve(&doc, &schema["properties"]["code"])["enum"];
                assert_eq!(
                    codes,
                    &serde_json::json!([code]),
                    "{} {status}: code",
                    op.operation_id
                );
            }
        }
    }
}

#[test]
fn provider_rules_match_the_document() {
    let doc = doc();
    let ops = operations(&doc);
    for provider in Provider::all() {
        let name = provider.name();
        // PUT …/accounts/{account}: maxJobs 1..limit.
        let put = ops
            .iter()
            .find(|o| {
                o.method == "PUT"
                    && o.template == format!("/admin/v1/users/{{user}}/{name}/accounts/{{account}}")
            })
            .unwrap_or_else(|| panic!("{name}: no PUT account"));
        let body = resolve(&doc, &put.value["requestBody"]);
        let max_jobs = resolve(
            &doc,
            &body["content"]["application/json"]["schema"]["properties"]["maxJobs"],
        );
        assert_eq!(max_jobs["minimum"], 1, "{name} maxJobs minimum");
        assert_eq!(
            max_jobs["maximum"].as_u64(),
            Some(u64::from(provider.max_jobs_limit())),
            "{name} maxJobs maximum"
        );
        // The account sample the document's examples would use is one the provider takes.
        let account =
            edge_scheduler::domain::percent_decode(&sample("account", Some(provider))).unwrap();
        assert!(
            provider.check_account(&account).is_ok(),
            "{name}: {account}"
        );

        // DELETE …/scheduler/{id}: the path id the provider reads; a 400 is documented
        // exactly when the provider refuses malformed ids (Kling), besides bad escapes.
        let cancel = ops
            .iter()
            .find(|o| o.method == "DELETE" && o.template.starts_with(provider.public_path()))
            .unwrap_or_else(|| panic!("{name}: no cancel"));
        let param = cancel.params.values().next().unwrap();
        let sample_id = edge_scheduler::domain::percent_decode(&sample(
            param["name"].as_str().unwrap(),
            Some(provider),
        ))
        .unwrap();
        assert_eq!(
            provider.path_id(&sample_id),
            PathId::Id(sample_id.clone()),
            "{name}: {sample_id}"
        );
        let invalid_possible = matches!(provider.path_id("abc"), PathId::Invalid(_));
        let described = resolve(&doc, &cancel.value["responses"]["400"])["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if invalid_possible {
            assert!(
                described.contains("task_id"),
                "{name}: the 400 should name the id rule: {described}"
            );
        }
        for id in ["available", "live"] {
            // Reserved segments are still job ids when deleted: the template covers them.
            let route = match_route("DELETE", &format!("{}/{id}", provider.public_path())).unwrap();
            assert_eq!(
                route,
                Route::Public {
                    provider,
                    op: PublicOp::Cancel(id.to_owned())
                }
            );
        }
    }
}
