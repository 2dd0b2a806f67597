//! The providers: everything one upstream service's scheduler page fixes (paths,
//! account and id rules, registration body, list item, error style and messages,
//! webhook payload) lives in one module per provider, behind [`ProviderRules`].
//!
//! The scheduler core (objects, admission, alarm, webhooks) only ever holds a
//! [`Provider`] and asks it; it never names one. Adding a provider is a new module
//! that implements the trait plus its line in [`REGISTRY`].

mod dreamina;
mod kling;
mod minimax;
mod pixverse;
mod runwayml;

use std::fmt;

use crate::errors::ErrorStyle;
use crate::jobs::{Clock, Ending, ItemTemplate, JobFacts, JobSpec};
use crate::json::{char_len, Fields, Object};
use crate::time::format_iso_millis;

/// Every provider the scheduler serves, in the order the page shows them.
static REGISTRY: [&dyn ProviderRules; 5] = [
    &kling::Kling,
    &dreamina::Dreamina,
    &minimax::MiniMax,
    &pixverse::PixVerse,
    &runwayml::RunwayMl,
];

/// How a provider's list groups its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One array, oldest job first across accounts (Kling and most of the family).
    Flat,
    /// `{"executing": {"<account>": [...]}, "total": n}`, accounts ascending, idle
    /// accounts left out (Dreamina).
    ByAccount,
}

/// What a path segment names as a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathId {
    /// A well-formed id: look it up.
    Id(String),
    /// Well-formed for the route but an id that can never be executing (too large,
    /// or text no registration accepts): the answer is the provider's 404.
    NeverRunning,
    /// Malformed for this provider (Kling: not a positive integer): a 400.
    Invalid(&'static str),
}

/// The rules of one provider. Implementations are unit structs in the provider
/// modules, with golden tests of their shapes beside them.
pub trait ProviderRules: Sync {
    /// The name in operator paths and object names, e.g. `kling`.
    fn name(&self) -> &'static str;
    /// The name people read, e.g. `MiniMax` (the live page's headings).
    fn title(&self) -> &'static str;
    /// The public scheduler path, e.g. `/v1/kling/scheduler`.
    fn public_path(&self) -> &'static str;
    /// The shape of this provider's public errors.
    fn error_style(&self) -> ErrorStyle {
        ErrorStyle::Coded
    }
    /// The largest `maxJobs` an account may have.
    fn max_jobs_limit(&self) -> u32;
    /// Checks an account name; the message says what is expected.
    fn check_account(&self, name: &str) -> Result<(), String>;
    /// The member that names an account in registration bodies, `available` rows and
    /// webhook payloads: `email` or `account`.
    fn account_key(&self) -> &'static str;
    /// Reads a percent-decoded job id from a path.
    fn path_id(&self, text: &str) -> PathId {
        match opaque_id(text) {
            Ok(()) => PathId::Id(text.to_owned()),
            Err(_) => PathId::NeverRunning,
        }
    }
    /// The public 404 message of a `DELETE` whose job is not executing.
    fn not_running(&self, text: &str) -> String;
    /// Reads the provider's own members of a registration body.
    fn parse_job(&self, body: &Fields<'_>) -> Result<JobSpec, String>;
    /// A job id made by the scheduler when the body carries none (Dreamina only).
    fn generate_id(
        &self,
        _user: &str,
        _account: &str,
        _now_ms: i64,
        _random: u32,
    ) -> Option<String> {
        None
    }
    fn layout(&self) -> Layout {
        Layout::Flat
    }
    /// Writes the members that identify a job (`id`, `jobid`, `videoId`/`imageId`,
    /// `id` and `type`, `taskId`): its list item, webhook and completion answer start
    /// with them.
    fn id_members(&self, o: &mut Object<'_>, job: &JobFacts<'_>);
    /// The job as the public list shows it, split around its clock.
    fn item(&self, job: &JobFacts<'_>) -> ItemTemplate;
    /// The webhook body for a job that ended. Most of the family sends
    /// `{<id members>,<account key>,"status","started","finished","replyRef"?,
    /// "result"?,"error"?}`; a provider whose page says otherwise overrides it.
    fn webhook(&self, job: &JobFacts<'_>, ending: &Ending<'_>) -> String {
        let mut out = String::new();
        let mut o = Object::new(&mut out);
        self.id_members(&mut o, job);
        o.str(self.account_key(), job.account)
            .str("status", ending.status.as_str())
            .str("started", &format_iso_millis(job.started_ms))
            .str("finished", &format_iso_millis(ending.finished_ms));
        ending_members(&mut o, job, ending);
        o.end();
        out
    }
}

/// A handle on one provider's rules: cheap to copy, compared by name.
#[derive(Clone, Copy)]
pub struct Provider(&'static dyn ProviderRules);

impl Provider {
    pub fn all() -> impl Iterator<Item = Provider> {
        REGISTRY.iter().map(|rules| Provider(*rules))
    }

    /// The provider of an operator path's `{provider}` segment.
    pub fn parse(name: &str) -> Option<Provider> {
        Provider::all().find(|p| p.name() == name)
    }

    /// The provider whose public scheduler path starts `path`, and the rest of it.
    pub fn by_public_path(path: &str) -> Option<(Provider, &str)> {
        Provider::all().find_map(|p| {
            let rest = path.strip_prefix(p.public_path())?;
            (rest.is_empty() || rest.starts_with('/')).then_some((p, rest))
        })
    }
}

impl std::ops::Deref for Provider {
    type Target = dyn ProviderRules;
    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl PartialEq for Provider {
    fn eq(&self, other: &Provider) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Provider {}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A provider travels between the objects as its name.
impl crate::wire::Wire for Provider {
    fn put(&self, w: &mut String) {
        self.name().to_owned().put(w);
    }
    fn get(r: &mut crate::wire::Reader<'_>) -> Result<Self, crate::wire::WireError> {
        let name = String::get(r)?;
        Provider::parse(&name).ok_or(crate::wire::WireError("unknown provider"))
    }
}

// ---------------------------------------------------------------------------------
// Rules several providers share.

/// The longest opaque job id.
pub const MAX_ID_CHARS: usize = 512;

/// An opaque job id: 1 to 512 visible ASCII characters without `/`, and not `.` or
/// `..`. Those two are refused because URL normalisation removes them from a path
/// (`%2E` forms included), so no cancel or completion could ever name such a job.
pub fn opaque_id(text: &str) -> Result<(), String> {
    let visible = !text.is_empty()
        && text.len() <= MAX_ID_CHARS
        && text.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    if visible && text != "." && text != ".." {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to {MAX_ID_CHARS} visible ASCII characters without '/', and not '.' or '..'"
        ))
    }
}

/// Reads a required opaque id member.
pub fn opaque_id_field(body: &Fields<'_>, key: &str) -> Result<String, String> {
    let id = body.required_string(key)?;
    opaque_id(&id).map_err(|rule| format!("{key} {rule}"))?;
    Ok(id)
}

/// The longest account name (an email can be 254 characters; Dreamina adds `XX:`).
pub const MAX_ACCOUNT_CHARS: usize = 260;

/// A pragmatic email check: one `@`, a non-empty local part, a dotted domain, no white
/// space, control characters or path/query delimiters, at most 254 characters.
pub fn email(text: &str) -> Result<(), String> {
    let bad = || format!("invalid account \"{text}\": expected an email");
    if char_len(text) > 254 {
        return Err(bad());
    }
    let (local, domain) = text.split_once('@').ok_or_else(bad)?;
    let clean = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '@' | '/' | '?' | '#' | '\\' | ':'))
    };
    let ok = clean(local)
        && clean(domain)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.');
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// `{<members>,"started","elapsed":<m:ss>,"replyUrl"?,"replyRef"?}`: the list item of
/// Kling and most of the family, split around its clock. `members` writes what comes
/// before `started`.
pub fn timed_item(job: &JobFacts<'_>, members: impl FnOnce(&mut Object<'_>)) -> ItemTemplate {
    let mut head = String::new();
    let mut o = Object::new(&mut head);
    members(&mut o);
    o.str("started", &format_iso_millis(job.started_ms));
    o.key("elapsed");
    ItemTemplate {
        head,
        clock: Clock::MinutesSeconds,
        tail: reply_tail(job, true),
    }
}

/// The operator's answer to a completion: `{"account","status",<id members>,
/// "webhookId"?}`.
pub fn completion_answer(
    provider: Provider,
    job: &JobFacts<'_>,
    status: &str,
    webhook_id: Option<&str>,
) -> String {
    let mut out = String::new();
    let mut o = Object::new(&mut out);
    o.str("account", job.account).str("status", status);
    provider.id_members(&mut o, job);
    o.opt_str("webhookId", webhook_id);
    o.end();
    out
}

/// `"replyRef"?,"result"?,"error"?`: the members every webhook ends with.
pub fn ending_members(o: &mut Object<'_>, job: &JobFacts<'_>, ending: &Ending<'_>) {
    o.opt_str("replyRef", job.reply_ref);
    if let Some(result) = ending.result {
        o.raw("result", result);
    }
    o.opt_str("error", ending.error);
}

/// `,"replyUrl":…,"replyRef":…}`: the optional members that close most list items.
pub fn reply_tail(job: &JobFacts<'_>, with_ref: bool) -> String {
    let mut tail = String::new();
    if let Some(url) = job.reply_url {
        tail.push_str(",\"replyUrl\":");
        crate::json::push_string(&mut tail, url);
    }
    if let (true, Some(reference)) = (with_ref, job.reply_ref) {
        tail.push_str(",\"replyRef\":");
        crate::json::push_string(&mut tail, reference);
    }
    tail.push('}');
    tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_is_found_by_name_and_by_its_public_path() {
        for p in Provider::all() {
            assert_eq!(Provider::parse(p.name()), Some(p));
            let (found, rest) = Provider::by_public_path(p.public_path()).unwrap();
            assert_eq!((found, rest), (p, ""));
            let sub = format!("{}/available", p.public_path());
            assert_eq!(Provider::by_public_path(&sub).unwrap().1, "/available");
        }
        assert_eq!(Provider::parse("sora"), None);
        assert!(Provider::by_public_path("/v1/klingx/scheduler").is_none());
        assert!(Provider::by_public_path("/v1/kling/schedulerx").is_none());
    }

    #[test]
    fn names_and_paths_are_unique() {
        let names: std::collections::BTreeSet<_> = Provider::all().map(|p| p.name()).collect();
        let paths: std::collections::BTreeSet<_> =
            Provider::all().map(|p| p.public_path()).collect();
        assert_eq!(names.len(), REGISTRY.len());
        assert_eq!(paths.len(), REGISTRY.len());
    }

    #[test]
    fn providers_travel_as_their_names() {
        let p = Provider::parse("pixverse").unwrap();
        assert_eq!(crate::wire::encode(&p), "8:pixverse");
        assert_eq!(crate::wire::decode::<Provider>("8:pixverse"), Ok(p));
        assert!(crate::wire::decode::<Provider>("4:nope").is_err());
    }

    #[test]
    fn opaque_ids_are_visible_ascii_without_slashes_or_dot_segments() {
        assert!(opaque_id("j0223140530123456789v-u12345-US:a@x.com:dreamina").is_ok());
        assert!(opaque_id("...").is_ok());
        assert!(opaque_id("a.b").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "é", &"j".repeat(513)] {
            assert!(opaque_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_are_checked_pragmatically() {
        assert!(email("a@x.com").is_ok());
        for bad in [
            "",
            "a",
            "a@x",
            "@x.com",
            "a@.com",
            "a@x.com.",
            "a b@x.com",
            "a@b@x.com",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }
}
