//! Structured logs: logfmt (the Prometheus default) or JSON, at a chosen level.

use std::str::FromStr;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
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
    fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// A subscriber writing to `writer`; libraries below us speak only at warn and above.
pub fn subscriber<W>(level: LogLevel, format: LogFormat, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let quiet = ["hyper", "hyper_util", "reqwest", "h2", "rustls"];
    let mut filter = EnvFilter::from_str(level.as_str()).expect("a level is a valid filter");
    for krate in quiet {
        let directive = format!("{krate}=warn").parse().expect("valid directive");
        filter = filter.add_directive(directive);
    }
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
