//! errgate: an egress API gateway on Pingora that turns every vendor error into one canonical
//! RFC 9457 problem+json.
//!
//! Pure modules (no I/O, no clock reads): [`scan`], [`decode`], [`normalize`], [`problem`],
//! [`retry`], [`config`] validation and the [`catalog`] data types. The loaders
//! ([`config::load_config`], [`catalog::load`], [`state`]) and [`reloader::watch`] touch the
//! filesystem; only [`cli`] builds the Pingora server. See ARCHITECTURE.md for the request and
//! reload flows.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access_log;
pub mod admin;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod confine;
pub mod cooldown_store;
pub mod decode;
pub mod diagnostic;
pub mod egress;
pub mod framing;
pub mod ids;
pub mod json_out;
pub mod methods;
pub mod metrics;
pub mod mode;
pub mod normalize;
pub mod problem;
pub mod proxy;
pub mod redact;
pub mod reloader;
pub mod retry;
pub mod scan;
pub mod secret;
pub mod state;
pub mod uncataloged;
pub mod yaml;
