//! Which route a (method, path) pair names. Pure: the glue passes the request's own
//! method text (any token, not just the ones the platform knows) and the raw, still
//! percent-encoded path, and gets a [`Route`] or the error to answer.
//!
//! Path parameters come back percent-decoded but not yet validated: user ids, account
//! names and job ids are parsed by the handlers after authentication, so an
//! unauthenticated caller learns nothing from the 400s.

use crate::domain::percent_decode;
use crate::errors::{ApiError, ErrorStyle};
use crate::providers::Provider;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: the live view page.
    Page,
    /// `GET /openapi.json`
    OpenApi,
    /// `OPTIONS` on any public path: CORS preflight.
    Preflight,
    /// A public route of one provider, with the user's own token.
    Public { provider: Provider, op: PublicOp },
    /// `POST /admin/v1/tokens`
    IssueToken,
    /// `POST /admin/v1/tokens/revoke`
    RevokeToken,
    /// `/admin/v1/users/{user}/{provider}/…`: `provider` is checked after the
    /// operator is authenticated (an unknown one is a 404).
    Operator {
        user: String,
        provider: String,
        op: OperatorOp,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicOp {
    /// `GET …/scheduler`
    List,
    /// `GET …/scheduler/available`
    Available,
    /// `GET …/scheduler/live` (a WebSocket upgrade)
    Live,
    /// `DELETE …/scheduler/{id}`: any segment is an id, `available` and `live` too.
    Cancel(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorOp {
    ListAccounts,
    PutAccount(String),
    DeleteAccount(String),
    Pause(String),
    Resume(String),
    ListJobs,
    RegisterJob,
    CompleteJob(String),
    Progress(String),
    ListWebhooks,
    RetryWebhooks,
    RetryWebhook(String),
}

impl Route {
    /// A short label for logs.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Page => "page",
            Route::OpenApi => "openapi",
            Route::Preflight => "preflight",
            Route::Public { op, .. } => match op {
                PublicOp::List => "list",
                PublicOp::Available => "available",
                PublicOp::Live => "live",
                PublicOp::Cancel(_) => "cancel",
            },
            Route::IssueToken => "issue_token",
            Route::RevokeToken => "revoke_token",
            Route::Operator { op, .. } => match op {
                OperatorOp::ListAccounts => "list_accounts",
                OperatorOp::PutAccount(_) => "put_account",
                OperatorOp::DeleteAccount(_) => "delete_account",
                OperatorOp::Pause(_) => "pause_account",
                OperatorOp::Resume(_) => "resume_account",
                OperatorOp::ListJobs => "list_jobs",
                OperatorOp::RegisterJob => "register_job",
                OperatorOp::CompleteJob(_) => "complete_job",
                OperatorOp::Progress(_) => "progress",
                OperatorOp::ListWebhooks => "list_webhooks",
                OperatorOp::RetryWebhooks => "retry_webhooks",
                OperatorOp::RetryWebhook(_) => "retry_webhook",
            },
        }
    }
}

/// A routing failure with the error style of the path it happened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    pub error: ApiError,
    pub style: ErrorStyle,
    /// Public paths answer with CORS headers even when they fail.
    pub public: bool,
}

/// The error style of a path whose route may not exist: the provider's own under its
/// public path, the coded shape everywhere else.
pub fn style_for_path(path: &str) -> ErrorStyle {
    let under = |root: &str| path == root || path.starts_with(&format!("{root}/"));
    Provider::all()
        .find(|p| {
            under(
                p.public_path()
                    .rsplit_once('/')
                    .map_or("", |(root, _)| root),
            )
        })
        .map_or(ErrorStyle::Coded, |p| p.error_style())
}

/// Whether a path is under the public API (`/v1/…`, `/v2/…`): its answers, errors
/// included, carry CORS headers so browsers can read them.
pub fn is_public_path(path: &str) -> bool {
    path.starts_with("/v1/") || path.starts_with("/v2/")
}

/// What a path names, before the method is looked at.
enum Resource {
    Page,
    OpenApi,
    Collection(Provider),
    /// `…/scheduler/{segment}`: `available`, `live`, or a job id.
    Item(Provider, String),
    Tokens,
    Revoke,
    Operator(String, String, OperatorPath),
}

enum OperatorPath {
    Accounts,
    Account(String),
    Pause(String),
    Resume(String),
    Jobs,
    Complete(String),
    Progress(String),
    Webhooks,
    RetryAll,
    Retry(String),
}

pub fn match_route(method: &str, raw_path: &str) -> Result<Route, RouteError> {
    let public = is_public_path(raw_path);
    let fail = |error| RouteError {
        error,
        style: style_for_path(raw_path),
        public,
    };
    let resource = resource(raw_path).map_err(fail)?;
    if method == "OPTIONS" && matches!(resource, Resource::Collection(_) | Resource::Item(..)) {
        return Ok(Route::Preflight);
    }
    let allowed = allowed_methods(&resource);
    let route = match (method, resource) {
        ("GET", Resource::Page) => Route::Page,
        ("GET", Resource::OpenApi) => Route::OpenApi,
        ("GET", Resource::Collection(provider)) => Route::Public {
            provider,
            op: PublicOp::List,
        },
        ("GET", Resource::Item(provider, segment)) if segment == "available" => Route::Public {
            provider,
            op: PublicOp::Available,
        },
        ("GET", Resource::Item(provider, segment)) if segment == "live" => Route::Public {
            provider,
            op: PublicOp::Live,
        },
        ("DELETE", Resource::Item(provider, id)) => Route::Public {
            provider,
            op: PublicOp::Cancel(id),
        },
        ("POST", Resource::Tokens) => Route::IssueToken,
        ("POST", Resource::Revoke) => Route::RevokeToken,
        (method, Resource::Operator(user, provider, path)) => {
            let op = match (method, path) {
                ("GET", OperatorPath::Accounts) => OperatorOp::ListAccounts,
                ("PUT", OperatorPath::Account(a)) => OperatorOp::PutAccount(a),
                ("DELETE", OperatorPath::Account(a)) => OperatorOp::DeleteAccount(a),
                ("POST", OperatorPath::Pause(a)) => OperatorOp::Pause(a),
                ("POST", OperatorPath::Resume(a)) => OperatorOp::Resume(a),
                ("GET", OperatorPath::Jobs) => OperatorOp::ListJobs,
                ("POST", OperatorPath::Jobs) => OperatorOp::RegisterJob,
                ("POST", OperatorPath::Complete(id)) => OperatorOp::CompleteJob(id),
                ("POST", OperatorPath::Progress(id)) => OperatorOp::Progress(id),
                ("GET", OperatorPath::Webhooks) => OperatorOp::ListWebhooks,
                ("POST", OperatorPath::RetryAll) => OperatorOp::RetryWebhooks,
                ("POST", OperatorPath::Retry(id)) => OperatorOp::RetryWebhook(id),
                _ => return Err(fail(ApiError::MethodNotAllowed { allow: allowed })),
            };
            Route::Operator { user, provider, op }
        }
        _ => return Err(fail(ApiError::MethodNotAllowed { allow: allowed })),
    };
    Ok(route)
}

fn allowed_methods(resource: &Resource) -> &'static str {
    match resource {
        Resource::Page | Resource::OpenApi => "GET",
        Resource::Collection(_) => "GET, OPTIONS",
        Resource::Item(_, segment) if segment == "available" || segment == "live" => {
            "GET, DELETE, OPTIONS"
        }
        Resource::Item(..) => "DELETE, OPTIONS",
        Resource::Tokens | Resource::Revoke => "POST",
        Resource::Operator(_, _, path) => match path {
            OperatorPath::Accounts | OperatorPath::Webhooks => "GET",
            OperatorPath::Account(_) => "PUT, DELETE",
            OperatorPath::Jobs => "GET, POST",
            _ => "POST",
        },
    }
}

fn resource(raw_path: &str) -> Result<Resource, ApiError> {
    if raw_path == "/" {
        return Ok(Resource::Page);
    }
    // One trailing slash is forgiven: `/v1/kling/scheduler/` is the list.
    let path = raw_path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(raw_path);
    let decode = |text: &str| percent_decode(text).map_err(ApiError::BadRequest);
    if let Some((provider, rest)) = Provider::by_public_path(path) {
        let segments: Vec<&str> = rest.split('/').skip(1).collect();
        return match segments.as_slice() {
            [] => Ok(Resource::Collection(provider)),
            [segment] if !segment.is_empty() => Ok(Resource::Item(provider, decode(segment)?)),
            _ => Err(ApiError::not_found()),
        };
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let resource = match segments.as_slice() {
        ["openapi.json"] => Resource::OpenApi,
        ["admin", "v1", "tokens"] => Resource::Tokens,
        ["admin", "v1", "tokens", "revoke"] => Resource::Revoke,
        ["admin", "v1", "users", user, provider, rest @ ..] => {
            let path = match rest {
                ["accounts"] => OperatorPath::Accounts,
                ["accounts", a] => OperatorPath::Account(decode(a)?),
                ["accounts", a, "pause"] => OperatorPath::Pause(decode(a)?),
                ["accounts", a, "resume"] => OperatorPath::Resume(decode(a)?),
                ["jobs"] => OperatorPath::Jobs,
                ["jobs", id, "complete"] => OperatorPath::Complete(decode(id)?),
                ["jobs", id, "progress"] => OperatorPath::Progress(decode(id)?),
                ["webhooks"] => OperatorPath::Webhooks,
                ["webhooks", "retry"] => OperatorPath::RetryAll,
                ["webhooks", id, "retry"] => OperatorPath::Retry(decode(id)?),
                _ => return Err(ApiError::not_found()),
            };
            Resource::Operator(decode(user)?, decode(provider)?, path)
        }
        _ => return Err(ApiError::not_found()),
    };
    Ok(resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> Provider {
        Provider::parse(name).unwrap()
    }

    fn public(provider: &str, op: PublicOp) -> Route {
        Route::Public {
            provider: p(provider),
            op,
        }
    }

    #[test]
    fn every_provider_has_its_public_routes() {
        for provider in Provider::all() {
            let base = provider.public_path();
            assert_eq!(
                match_route("GET", base),
                Ok(public(provider.name(), PublicOp::List))
            );
            assert_eq!(
                match_route("GET", &format!("{base}/")),
                Ok(public(provider.name(), PublicOp::List))
            );
            assert_eq!(
                match_route("GET", &format!("{base}/available")),
                Ok(public(provider.name(), PublicOp::Available))
            );
            assert_eq!(
                match_route("GET", &format!("{base}/live")),
                Ok(public(provider.name(), PublicOp::Live))
            );
            assert_eq!(
                match_route("DELETE", &format!("{base}/a%2Fb")),
                Ok(public(provider.name(), PublicOp::Cancel("a/b".to_owned())))
            );
            assert_eq!(
                match_route("OPTIONS", &format!("{base}/x")),
                Ok(Route::Preflight)
            );
        }
        assert!(match_route("GET", "/v1/pixverse/scheduler").is_err());
    }

    #[test]
    fn reserved_segments_are_still_job_ids_when_deleted() {
        assert_eq!(
            match_route("DELETE", "/v1/dreamina/scheduler/available"),
            Ok(public("dreamina", PublicOp::Cancel("available".to_owned())))
        );
        assert_eq!(
            match_route("DELETE", "/v2/pixverse/scheduler/live"),
            Ok(public("pixverse", PublicOp::Cancel("live".to_owned())))
        );
    }

    #[test]
    fn unknown_methods_are_405_with_allow_never_a_get() {
        for (method, path, allow) in [
            ("PROPFIND", "/v1/kling/scheduler", "GET, OPTIONS"),
            ("get", "/v1/kling/scheduler", "GET, OPTIONS"),
            ("POST", "/v1/kling/scheduler", "GET, OPTIONS"),
            (
                "HEAD",
                "/v1/kling/scheduler/available",
                "GET, DELETE, OPTIONS",
            ),
            ("GET", "/v1/kling/scheduler/123", "DELETE, OPTIONS"),
            ("PROPFIND", "/admin/v1/users/1/kling/accounts", "GET"),
            (
                "PATCH",
                "/admin/v1/users/1/kling/accounts/a@x.com",
                "PUT, DELETE",
            ),
            ("DELETE", "/admin/v1/users/1/kling/jobs", "GET, POST"),
            ("GET", "/admin/v1/users/1/kling/jobs/1/progress", "POST"),
            ("PUT", "/admin/v1/tokens", "POST"),
            ("POST", "/", "GET"),
        ] {
            let e = match_route(method, path).unwrap_err();
            assert_eq!(
                e.error,
                ApiError::MethodNotAllowed { allow },
                "{method} {path}"
            );
        }
    }

    #[test]
    fn operator_routes_carry_decoded_parameters() {
        let op = |method, path| match match_route(method, path) {
            Ok(Route::Operator { op, user, provider }) => (user, provider, op),
            other => panic!("{method} {path}: {other:?}"),
        };
        assert_eq!(
            op(
                "PUT",
                "/admin/v1/users/12345/dreamina/accounts/US%3Aa%40x.com"
            ),
            (
                "12345".into(),
                "dreamina".into(),
                OperatorOp::PutAccount("US:a@x.com".into())
            )
        );
        assert_eq!(
            op("POST", "/admin/v1/users/u/kling/accounts/a@x.com/pause").2,
            OperatorOp::Pause("a@x.com".into())
        );
        assert_eq!(
            op("GET", "/admin/v1/users/u/kling/jobs").2,
            OperatorOp::ListJobs
        );
        assert_eq!(
            op("POST", "/admin/v1/users/u/minimax/jobs/v%201/progress").2,
            OperatorOp::Progress("v 1".into())
        );
        assert_eq!(
            op("POST", "/admin/v1/users/u/kling/webhooks/retry").2,
            OperatorOp::RetryWebhooks
        );
        assert_eq!(
            op("POST", "/admin/v1/users/u/kling/webhooks/msg_1/retry").2,
            OperatorOp::RetryWebhook("msg_1".into())
        );
        // An unknown provider is routed, then refused after authentication.
        assert_eq!(op("GET", "/admin/v1/users/u/sora/jobs").1, "sora");
    }

    #[test]
    fn unknown_paths_are_404_in_the_style_of_their_provider() {
        let e = match_route("GET", "/v1/dreamina/scheduler/a/b").unwrap_err();
        assert_eq!(
            (e.error.status(), e.style, e.public),
            (404, ErrorStyle::Plain, true)
        );
        let e = match_route("GET", "/v1/dreamina/nope").unwrap_err();
        assert_eq!(
            (e.error.status(), e.style, e.public),
            (404, ErrorStyle::Plain, true)
        );
        let e = match_route("GET", "/v1/kling/nope").unwrap_err();
        assert_eq!((e.error.status(), e.style), (404, ErrorStyle::Coded));
        assert_eq!(match_route("GET", "/nope").unwrap_err().error.status(), 404);
        assert_eq!(match_route("GET", "").unwrap_err().error.status(), 404);
        assert_eq!(match_route("GET", "/"), Ok(Route::Page));
        assert_eq!(match_route("GET", "/openapi.json"), Ok(Route::OpenApi));
    }

    #[test]
    fn malformed_percent_encoding_is_a_400() {
        assert_eq!(
            match_route("DELETE", "/v1/kling/scheduler/%zz")
                .unwrap_err()
                .error
                .status(),
            400
        );
    }
}
