//! Edge job scheduler: the scheduler endpoints of an AI-video API gateway, as a
//! Cloudflare Worker.
//!
//! The crate is split in two:
//! - plain modules with no `worker` types (providers, shapes, parsing, time,
//!   admission, alarm planning, webhook rules, the object protocol), tested natively
//!   with `cargo test`;
//! - [`runtime`], compiled only for wasm32, the thin glue that reads requests, talks to
//!   Workers KV and the Durable Objects, and turns results into responses.

pub mod admission;
pub mod alarm;
pub mod base64;
pub mod config;
pub mod domain;
pub mod errors;
pub mod jobs;
pub mod json;
pub mod lists;
pub mod live;
pub mod outbox;
pub mod page;
pub mod protocol;
pub mod providers;
pub mod routes;
pub mod time;
pub mod tokens;
pub mod webhook;
pub mod wire;

#[cfg(target_arch = "wasm32")]
mod runtime;
