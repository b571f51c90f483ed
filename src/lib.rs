//! idauth-exporter: polls Smile ID's ID-authority status and serves it to Prometheus.
//!
//! The data goes one way through the modules, and imports follow it (a test fails on any
//! cycle):
//!
//! - [`config`]: the YAML file, parsed once into typed, validated values.
//! - [`smileid`]: the provider client (v2 signed POST, v3 token + GET), every failure a
//!   [`model::PollError`]; [`discovery`] keeps the pairs of the provider's catalogue
//!   (`discovery:`) up to date.
//! - [`scheduler`] runs cycles on the cron schedule; [`poller`] polls every watched pair in
//!   a cycle, bounded concurrency, spread over a jitter window.
//! - [`store`]: the one place each pair's state lives: the watched pairs, their latest
//!   observation and poll, counters, and timeline (runs of state, "since", the last day),
//!   computed once into the views every reader takes.
//! - [`history`]: the durable record of every poll (redb under `--storage.path`), replayed
//!   into the store at start, read back for older points and exports; [`history::timeline`]
//!   is the arithmetic of runs, uptime and cells.
//! - [`metrics`]: the Prometheus registry, and the per-pair series written from the store
//!   at scrape time.
//! - [`web`]: what is served over HTTP: `/metrics`, the status page, the JSON API, health,
//!   readiness and reload ([`web::http`] is the generic serving the simulator shares,
//!   [`web::auth`] the TLS and basic authentication of `--web.config.file`).
//! - [`app`]: wiring only: builds the above from the configuration, reload and signals.
//!
//! Around them: [`model`] (domain values, `PollError`, `FailureReason`, the poll budget,
//! the clock and the JSON time format), [`catalog`] (documented ID types), [`secret`] and
//! [`signature`] (credentials), [`files`] (capped reads of files), [`tls`] (the rustls
//! crypto provider and certificate expiry), [`telemetry`] (logs), [`check`] (the `check`
//! command), [`cli`] (flags and the `history` commands), [`simulator`] (a fake Smile ID
//! playing a scenario; it uses nothing of the exporter's runtime), [`demo`] (the simulator
//! and the exporter together) and [`allocator`] (the C allocator's tuning: the one module
//! allowed `unsafe`, for two calls into glibc).

#![deny(unsafe_code)]
#![warn(missing_docs)]

#[allow(unsafe_code)]
pub mod allocator;
pub mod app;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod discovery;
pub mod files;
pub mod history;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod poller;
pub mod scheduler;
pub mod secret;
pub mod signature;
pub mod simulator;
pub mod smileid;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod web;
