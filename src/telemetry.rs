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
                    .with_writer(Logfmt(writer)),
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

/// Writers of logfmt lines without `\'`: tracing-logfmt quotes values with Rust's
/// `escape_debug`, which escapes an apostrophe that logfmt leaves alone
/// (`message="read the provider\'s catalogue"`).
struct Logfmt<W>(W);

impl<'a, W: MakeWriter<'a>> MakeWriter<'a> for Logfmt<W> {
    type Writer = Unescape<W::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Unescape { inner: self.0.make_writer(), backslash: false }
    }
}

/// One event's writer: `\'` becomes `'`; every other escape (`\\`, `\"`, `\n`) stays.
struct Unescape<W: std::io::Write> {
    inner: W,
    /// The last byte written was an escaping backslash, not yet passed on.
    backslash: bool,
}

impl<W: std::io::Write> std::io::Write for Unescape<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut out = Vec::with_capacity(buf.len() + 1);
        for &b in buf {
            match (self.backslash, b) {
                (true, b'\'') => {
                    out.push(b);
                    self.backslash = false;
                }
                (true, _) => {
                    out.extend_from_slice(&[b'\\', b]);
                    self.backslash = false;
                }
                (false, b'\\') => self.backslash = true,
                (false, _) => out.push(b),
            }
        }
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if std::mem::take(&mut self.backslash) {
            self.inner.write_all(b"\\")?;
        }
        self.inner.flush()
    }
}

impl<W: std::io::Write> Drop for Unescape<W> {
    fn drop(&mut self) {
        // Escapes come in pairs, so this is never needed; but nothing written is lost.
        if self.backslash {
            let _ = self.inner.write_all(b"\\");
        }
    }
}

/// Installs the process-wide subscriber, logging to standard error.
pub fn init(level: LogLevel, format: LogFormat) {
    let _ = tracing::subscriber::set_global_default(subscriber(level, format, std::io::stderr));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn unescaped(chunks: &[&str]) -> String {
        let mut w = Unescape { inner: Vec::new(), backslash: false };
        for c in chunks {
            w.write_all(c.as_bytes()).unwrap();
        }
        w.flush().unwrap();
        String::from_utf8(std::mem::take(&mut w.inner)).unwrap()
    }

    #[test]
    fn apostrophes_are_left_alone_and_every_other_escape_kept() {
        assert_eq!(
            unescaped(&[r#"message="read the provider\'s catalogue""#]),
            r#"message="read the provider's catalogue""#
        );
        // An escaped backslash before an apostrophe stays an escaped backslash.
        assert_eq!(unescaped(&[r#"a="x\\\'y" b="q\"q\n""#]), r#"a="x\\'y" b="q\"q\n""#);
        // Split anywhere, the same.
        assert_eq!(unescaped(&["a=\"it\\", "'s\"\n"]), "a=\"it's\"\n");
    }

    #[test]
    fn a_logged_apostrophe_comes_out_plain() {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl<'a> MakeWriter<'a> for Buf {
            type Writer = Buf;
            fn make_writer(&'a self) -> Buf {
                self.clone()
            }
        }
        let buf = Buf::default();
        tracing::subscriber::with_default(subscriber(LogLevel::Info, LogFormat::Logfmt, buf.clone()), || {
            tracing::info!(path = "C:\\dir", "read the provider's catalogue");
        });
        let line = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(line.contains(r#"message="read the provider's catalogue""#), "{line}");
        assert!(line.contains(r#"path="C:\\dir""#) || line.contains(r"path=C:\dir"), "{line}");
    }
}
