//! idauth-exporter: polls Smile ID's ID-authority status and serves it to Prometheus.
//!
//! The data goes one way through the modules:
//!
//! - [`config`]: the YAML file, parsed once into typed, validated values.
//! - [`smileid`]: the provider client (v2 signed POST, v3 token + GET), errors
//!   classified into a bounded `reason`; [`discovery`] keeps the pairs of the provider's
//!   catalogue (`discovery:`) up to date.
//! - [`poller`]: one cycle over every target, bounded concurrency, spread over a jitter window;
//!   [`scheduler`] runs cycles on the cron schedule.
//! - [`store`]: the latest observation and poll outcome per target, the one place state lives.
//! - [`metrics`]: the Prometheus registry, and the per-pair series written straight from the
//!   store at scrape time.
//! - [`server`]: `/metrics`, `/`, `/-/healthy`, `/-/ready`, `/-/reload`, `/api/v1/status`;
//!   [`views`] renders the landing page's table and the status JSON from a store snapshot;
//!   [`webconfig`] adds TLS and basic authentication (`--web.config.file`).
//!
//! Around them: [`model`] (domain values, `FailureReason`, the poll budget and the clock),
//! [`catalog`] (documented ID types), [`secret`] and [`signature`] (credentials), [`files`]
//! (capped reads of files), [`tls`] (the rustls crypto provider and certificate expiry),
//! [`telemetry`] (logs), [`app`] (the daemon wired together: reload
//! and signals), [`check`] (the `check` command), [`cli`] (flags), [`simulator`] (a fake
//! Smile ID playing a scenario), [`demo`] (the simulator and the exporter together) and
//! [`allocator`] (the C allocator's tuning: the one module allowed `unsafe`, for two
//! calls into glibc).

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
pub mod poller;
pub mod scheduler;
pub mod secret;
pub mod server;
pub mod signature;
pub mod simulator;
pub mod smileid;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod views;
pub mod web;
pub mod webconfig;
