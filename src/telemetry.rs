//! Structured logs: logfmt (the Prometheus default) or JSON, at a chosen level.

use tracing::Subscriber;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// `--log.format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, one event a line.
    Logfmt,
    /// One JSON object a line.
    Json,
}

/// `--log.level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    /// Everything, including each poll.
    Debug,
    /// Cycles, reloads, start and stop.
    Info,
    /// Failing polls and other trouble.
    Warn,
    /// Only errors.
    Error,
}

impl LogLevel {
    fn filter(self) -> LevelFilter {
        match self {
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Error => LevelFilter::ERROR,
        }
    }
}

/// A subscriber writing to `writer`; libraries below us speak only at warn and above.
pub fn subscriber<W>(level: LogLevel, format: LogFormat, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // A fixed per-crate filter: `Targets` does it without EnvFilter's regex engine.
    let quiet = ["hyper", "hyper_util", "reqwest", "h2", "rustls"];
    let filter = Targets::new().with_default(level.filter()).with_targets(quiet.map(|k| (k, LevelFilter::WARN)));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Logfmt => Box::new(
            registry.with(
                tracing_logfmt::builder()
                    .with_target(false)
                    .with_span_name(false)
                    .with_span_path(false)
                    .layer()
                    .with_writer(writer),
            ),
        ),
        LogFormat::Json => Box::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_target(false)
                    .with_writer(writer),
            ),
        ),
    }
}

/// Installs the process-wide subscriber, logging to standard error.
pub fn init(level: LogLevel, format: LogFormat) {
    let _ = tracing::subscriber::set_global_default(subscriber(level, format, std::io::stderr));
}
