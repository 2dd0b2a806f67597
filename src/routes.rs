//! Which route a (method, path) pair names. Pure: the glue passes the method name and
//! the raw (still percent-encoded) path, and gets a [`Route`] or the error to answer.
//!
//! Path parameters come back percent-decoded but not yet validated: user ids, account
//! names and job ids are parsed by the handlers after authentication, so an
//! unauthenticated caller learns nothing from the 400s.

use crate::domain::{percent_decode, Provider};
use crate::errors::{ApiError, ErrorStyle};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /v1/{provider}/scheduler`
    ListJobs { provider: Provider },
    /// `GET /v1/{provider}/scheduler/available`
    ListAvailable { provider: Provider },
    /// `DELETE /v1/{provider}/scheduler/{id}`
    CancelJob { provider: Provider, job: String },
    /// `OPTIONS` on any public path: CORS preflight.
    Preflight,
    /// `GET /openapi.json`
    OpenApi,
    /// `POST /admin/v1/tokens`
    IssueToken,
    /// `POST /admin/v1/tokens/revoke`
    RevokeToken,
    /// `GET /admin/v1/users/{user}/{provider}/accounts`
    ListAccounts { user: String, provider: Provider },
    /// `PUT /admin/v1/users/{user}/{provider}/accounts/{account}`
    PutAccount {
        user: String,
        provider: Provider,
        account: String,
    },
    /// `DELETE /admin/v1/users/{user}/{provider}/accounts/{account}`
    DeleteAccount {
        user: String,
        provider: Provider,
        account: String,
    },
    /// `POST /admin/v1/users/{user}/{provider}/jobs`
    RegisterJob { user: String, provider: Provider },
    /// `POST /admin/v1/users/{user}/{provider}/jobs/{id}/complete`
    CompleteJob {
        user: String,
        provider: Provider,
        job: String,
    },
    /// `GET /admin/v1/users/{user}/{provider}/webhooks`
    ListWebhooks { user: String, provider: Provider },
}

/// A routing failure with the error style of the path it happened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    pub error: ApiError,
    pub style: ErrorStyle,
    /// Public paths answer with CORS headers even when they fail.
    pub public: bool,
}

/// What a path is, before the method is looked at.
enum PathMatch {
    Public {
        provider: Provider,
        kind: PublicKind,
    },
    Admin(AdminPath),
    OpenApi,
}

enum PublicKind {
    Collection,
    Available,
    Item(String),
}

enum AdminPath {
    Tokens,
    Revoke,
    Accounts {
        user: String,
        provider: Provider,
    },
    Account {
        user: String,
        provider: Provider,
        account: String,
    },
    Jobs {
        user: String,
        provider: Provider,
    },
    Complete {
        user: String,
        provider: Provider,
        job: String,
    },
    Webhooks {
        user: String,
        provider: Provider,
    },
}

/// The error style of a path whose route may not exist: Dreamina's plain shape under
/// `/v1/dreamina/`, the coded shape everywhere else.
pub fn style_for_path(path: &str) -> ErrorStyle {
    if path.starts_with("/v1/dreamina/") || path == "/v1/dreamina" {
        ErrorStyle::Plain
    } else {
        ErrorStyle::Coded
    }
}

pub fn style_for(provider: Provider) -> ErrorStyle {
    match provider {
        Provider::Dreamina => ErrorStyle::Plain,
        Provider::Kling => ErrorStyle::Coded,
    }
}

pub fn match_route(method: &str, raw_path: &str) -> Result<Route, RouteError> {
    let style = style_for_path(raw_path);
    let public = raw_path.starts_with("/v1/");
    let fail = |error| RouteError {
        error,
        style,
        public,
    };
    let path = match_path(raw_path).map_err(fail)?;
    let method = method.to_ascii_uppercase();
    let allowed = allowed_methods(&path);
    let route = match (method.as_str(), path) {
        ("OPTIONS", PathMatch::Public { .. }) => Route::Preflight,
        ("GET", PathMatch::OpenApi) => Route::OpenApi,
        (
            "GET",
            PathMatch::Public {
                provider,
                kind: PublicKind::Collection,
            },
        ) => Route::ListJobs { provider },
        (
            "GET",
            PathMatch::Public {
                provider,
                kind: PublicKind::Available,
            },
        ) => Route::ListAvailable { provider },
        (
            "DELETE",
            PathMatch::Public {
                provider,
                kind: PublicKind::Item(job),
            },
        ) => Route::CancelJob { provider, job },
        // `/scheduler/available` is also a job named "available" when deleted.
        (
            "DELETE",
            PathMatch::Public {
                provider,
                kind: PublicKind::Available,
            },
        ) => Route::CancelJob {
            provider,
            job: "available".to_owned(),
        },
        ("POST", PathMatch::Admin(AdminPath::Tokens)) => Route::IssueToken,
        ("POST", PathMatch::Admin(AdminPath::Revoke)) => Route::RevokeToken,
        ("GET", PathMatch::Admin(AdminPath::Accounts { user, provider })) => {
            Route::ListAccounts { user, provider }
        }
        (
            "PUT",
            PathMatch::Admin(AdminPath::Account {
                user,
                provider,
                account,
            }),
        ) => Route::PutAccount {
            user,
            provider,
            account,
        },
        (
            "DELETE",
            PathMatch::Admin(AdminPath::Account {
                user,
                provider,
                account,
            }),
        ) => Route::DeleteAccount {
            user,
            provider,
            account,
        },
        ("POST", PathMatch::Admin(AdminPath::Jobs { user, provider })) => {
            Route::RegisterJob { user, provider }
        }
        (
            "POST",
            PathMatch::Admin(AdminPath::Complete {
                user,
                provider,
                job,
            }),
        ) => Route::CompleteJob {
            user,
            provider,
            job,
        },
        ("GET", PathMatch::Admin(AdminPath::Webhooks { user, provider })) => {
            Route::ListWebhooks { user, provider }
        }
        _ => return Err(fail(ApiError::MethodNotAllowed { allow: allowed })),
    };
    Ok(route)
}

fn allowed_methods(path: &PathMatch) -> &'static str {
    match path {
        PathMatch::Public {
            kind: PublicKind::Collection,
            ..
        } => "GET, OPTIONS",
        PathMatch::Public {
            kind: PublicKind::Available,
            ..
        } => "GET, DELETE, OPTIONS",
        PathMatch::Public {
            kind: PublicKind::Item(_),
            ..
        } => "DELETE, OPTIONS",
        PathMatch::OpenApi => "GET",
        PathMatch::Admin(AdminPath::Account { .. }) => "PUT, DELETE",
        PathMatch::Admin(AdminPath::Accounts { .. } | AdminPath::Webhooks { .. }) => "GET",
        PathMatch::Admin(_) => "POST",
    }
}

fn match_path(raw_path: &str) -> Result<PathMatch, ApiError> {
    // One trailing slash is forgiven: `/v1/kling/scheduler/` is the list.
    let trimmed = raw_path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(raw_path);
    let segments: Vec<&str> = trimmed.trim_start_matches('/').split('/').collect();
    let provider = |text: &str| Provider::parse(text).ok_or_else(ApiError::not_found);
    let decode = |text: &str| percent_decode(text).map_err(ApiError::BadRequest);
    let matched = match segments.as_slice() {
        ["openapi.json"] => PathMatch::OpenApi,
        ["v1", p, "scheduler"] => PathMatch::Public {
            provider: provider(p)?,
            kind: PublicKind::Collection,
        },
        ["v1", p, "scheduler", "available"] => PathMatch::Public {
            provider: provider(p)?,
            kind: PublicKind::Available,
        },
        ["v1", p, "scheduler", id] if !id.is_empty() => PathMatch::Public {
            provider: provider(p)?,
            kind: PublicKind::Item(decode(id)?),
        },
        ["admin", "v1", "tokens"] => PathMatch::Admin(AdminPath::Tokens),
        ["admin", "v1", "tokens", "revoke"] => PathMatch::Admin(AdminPath::Revoke),
        ["admin", "v1", "users", u, p, rest @ ..] => {
            let (user, provider) = (decode(u)?, provider(p)?);
            PathMatch::Admin(match rest {
                ["accounts"] => AdminPath::Accounts { user, provider },
                ["accounts", a] if !a.is_empty() => AdminPath::Account {
                    user,
                    provider,
                    account: decode(a)?,
                },
                ["jobs"] => AdminPath::Jobs { user, provider },
                ["jobs", id, "complete"] if !id.is_empty() => AdminPath::Complete {
                    user,
                    provider,
                    job: decode(id)?,
                },
                ["webhooks"] => AdminPath::Webhooks { user, provider },
                _ => return Err(ApiError::not_found()),
            })
        }
        _ => return Err(ApiError::not_found()),
    };
    Ok(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> Route {
        match_route(method, path).unwrap()
    }

    fn status(method: &str, path: &str) -> u16 {
        match_route(method, path).unwrap_err().error.status()
    }

    #[test]
    fn public_routes_resolve_for_both_providers() {
        for provider in Provider::ALL {
            let base = format!("/v1/{provider}/scheduler");
            assert_eq!(route("GET", &base), Route::ListJobs { provider });
            assert_eq!(
                route("GET", &format!("{base}/")),
                Route::ListJobs { provider }
            );
            assert_eq!(
                route("GET", &format!("{base}/available")),
                Route::ListAvailable { provider }
            );
            assert_eq!(route("OPTIONS", &base), Route::Preflight);
        }
    }

    #[test]
    fn dreamina_jobids_arrive_percent_decoded() {
        assert_eq!(
            route(
                "DELETE",
                "/v1/dreamina/scheduler/j1v-u1-US%3Aa%40x.com%3Adreamina"
            ),
            Route::CancelJob {
                provider: Provider::Dreamina,
                job: "j1v-u1-US:a@x.com:dreamina".to_owned()
            }
        );
    }

    #[test]
    fn wrong_methods_name_the_allowed_ones() {
        let err = match_route("POST", "/v1/kling/scheduler").unwrap_err();
        assert_eq!(
            err.error,
            ApiError::MethodNotAllowed {
                allow: "GET, OPTIONS"
            }
        );
        assert_eq!(err.style, ErrorStyle::Coded);
        let err = match_route("PATCH", "/v1/dreamina/scheduler/x").unwrap_err();
        assert_eq!(err.style, ErrorStyle::Plain);
        assert_eq!(status("GET", "/admin/v1/tokens"), 405);
        assert_eq!(
            status("POST", "/admin/v1/users/1/kling/accounts/a@x.com"),
            405
        );
    }

    #[test]
    fn unknown_paths_and_providers_are_404() {
        assert_eq!(status("GET", "/"), 404);
        assert_eq!(status("GET", "/v1/runway/scheduler"), 404);
        assert_eq!(status("GET", "/v1/kling/scheduler/1/2"), 404);
        assert_eq!(status("GET", "/admin/v1/users/1/runway/accounts"), 404);
        assert_eq!(status("GET", "/admin/v1/users/1/kling/nothing"), 404);
        assert_eq!(
            match_route("GET", "/v1/dreamina/nope").unwrap_err().style,
            ErrorStyle::Plain
        );
    }

    #[test]
    fn malformed_percent_encoding_is_a_400() {
        assert_eq!(status("DELETE", "/v1/dreamina/scheduler/%zz"), 400);
    }

    #[test]
    fn operator_routes_carry_their_parameters() {
        assert_eq!(
            route("POST", "/admin/v1/users/42/dreamina/jobs/j%3A1/complete"),
            Route::CompleteJob {
                user: "42".to_owned(),
                provider: Provider::Dreamina,
                job: "j:1".to_owned()
            }
        );
        assert_eq!(
            route("PUT", "/admin/v1/users/42/kling/accounts/a%40x.com"),
            Route::PutAccount {
                user: "42".to_owned(),
                provider: Provider::Kling,
                account: "a@x.com".to_owned()
            }
        );
    }
}
