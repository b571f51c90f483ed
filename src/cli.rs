//! Command-line flags, spelled as Prometheus' own exporters spell them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::telemetry::{LogFormat, LogLevel};

/// As Prometheus' own exporters print it: version and revision first, then the branch,
/// the build date, the toolchain and the platform.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("IDAUTH_REVISION"),
    ", branch ",
    env!("IDAUTH_BRANCH"),
    ")\n  build date:    ",
    env!("IDAUTH_BUILD_DATE"),
    "\n  rust version:  ",
    env!("IDAUTH_RUST_VERSION"),
    "\n  platform:      ",
    env!("IDAUTH_PLATFORM"),
);

/// The configuration file read when `--config.file` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "idauth-exporter.yaml";

/// `--config.file` of a command that reads the configuration (given after the command).
#[derive(Debug, Default, clap::Args)]
pub struct ConfigFileArg {
    /// Configuration file [default: idauth-exporter.yaml].
    #[arg(long = "config.file", value_name = "PATH", global = true)]
    pub config_file: Option<PathBuf>,
}

/// idauth-exporter: the availability of government ID authorities behind Smile ID, for Prometheus.
#[derive(Debug, Parser)]
#[command(
    name = "idauth-exporter",
    version = VERSION,
    about = "Prometheus exporter for the availability of government ID authorities behind Smile ID",
    long_about = "Polls Smile ID's id_status endpoint for every configured (country, id_type) pair on a \
cron schedule and serves the results on /metrics.\n\nWithout a command, runs the exporter.\n\nThe API key is read from \
the file smile_id.api_key_file names, or from the environment variable smile_id.api_key_env names \
(SMILE_ID_API_KEY by default), or from systemd's credential smile_id_api_key; never from a flag.",
    after_help = "Examples:\n  idauth-exporter --config.file=/etc/idauth-exporter/config.yaml\n  \
idauth-exporter check --config.file=config.yaml NG BVN\n  idauth-exporter config check --config.file=config.yaml"
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long = "config.file", value_name = "PATH", default_value = DEFAULT_CONFIG_FILE)]
    pub config_file: PathBuf,

    /// Address to listen on for the web interface and metrics, overriding web.listen_address
    /// [default: web.listen_address, else :9877]
    #[arg(long = "web.listen-address", value_name = "ADDR")]
    pub listen_address: Option<String>,

    /// Path to a configuration file that can enable TLS or authentication (exporter-toolkit format).
    #[arg(long = "web.config.file", value_name = "PATH")]
    pub web_config_file: Option<PathBuf>,

    /// Most HTTP connections open at once; at the cap the longest-idle one is closed.
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Directory of the history store (state, since and history survive restarts).
    #[arg(long = "storage.path", value_name = "DIR", default_value = "data/")]
    pub storage_path: PathBuf,

    /// How long history is kept (e.g. 30d, 90d).
    #[arg(long = "storage.retention", value_name = "DURATION", default_value = "30d", value_parser = parse_retention)]
    pub storage_retention: std::time::Duration,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info, global = true)]
    pub log_level: LogLevel,

    /// Output format of log messages.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt, global = true)]
    pub log_format: LogFormat,

    /// What to do instead of running the exporter.
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The configuration file: the one given after the command, else before it, else the
    /// default.
    pub fn config_path(&self) -> &std::path::Path {
        let after = match &self.command {
            Some(
                Command::Check { file, .. }
                | Command::Config { file, .. }
                | Command::History { action: HistoryCommand::Fill { file, .. }, .. },
            ) => file.config_file.as_deref(),
            _ => None,
        };
        after.unwrap_or(&self.config_file)
    }
}

fn parse_retention(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (expected a duration such as 30d)"))?;
    if d < std::time::Duration::from_secs(86_400) {
        return Err("expected at least 1d: the status page shows 24 hours".to_owned());
    }
    Ok(d)
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Poll now and print a table; exit 0 if all are online, 1 if any is not, 2 on error.
    Check {
        /// Only this country (with ID_TYPE), configured or not.
        #[arg(requires = "id_type")]
        country: Option<String>,
        /// Only this ID type (with COUNTRY).
        id_type: Option<String>,
        /// The configuration.
        #[command(flatten)]
        file: ConfigFileArg,
    },
    /// Run a fake Smile ID API (v2, v3, /v1/services) playing a scenario.
    Simulate(SimulateArgs),
    /// Run the simulator and the exporter together: live metrics, no account needed.
    Demo {
        /// Address to serve the exporter on [default: 127.0.0.1:9877].
        #[arg(long = "web.listen-address", value_name = "ADDR")]
        listen_address: Option<String>,
    },
    /// Work with the configuration file.
    Config {
        /// The configuration.
        #[command(flatten)]
        file: ConfigFileArg,
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigCommand,
    },
    /// Work with the history store (--storage.path) while no exporter holds it.
    History {
        /// The store.
        #[command(flatten)]
        storage: StorageArgs,
        /// What to do with it.
        #[command(subcommand)]
        action: HistoryCommand,
    },
}

/// `simulate` options.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Address to serve on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9878")]
    pub listen: String,
    /// Scenario file (YAML); the built-in scenario when absent.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// The partner ID the simulator accepts.
    #[arg(long = "partner-id", value_name = "ID", default_value = "085")]
    pub partner_id: String,
    /// Environment variable holding the API key the simulator accepts.
    #[arg(long = "api-key-env", value_name = "NAME", default_value = "SMILE_ID_API_KEY")]
    pub api_key_env: String,
    /// The environment the simulated key belongs to.
    #[arg(long, value_enum, default_value_t = SimEnvironment::Production)]
    pub environment: SimEnvironment,
    /// Simulated time runs N times faster than real time (60: a 10-minute window every 10 s).
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    pub speed: f64,
}

impl SimulateArgs {
    /// The simulator's options from these flags.
    pub fn options(&self) -> crate::simulator::Options {
        crate::simulator::Options {
            listen: self.listen.clone(),
            scenario: self.scenario.clone(),
            partner_id: self.partner_id.clone(),
            api_key_env: self.api_key_env.clone(),
            environment: match self.environment {
                SimEnvironment::Production => crate::config::Environment::Production,
                SimEnvironment::Sandbox => crate::config::Environment::Sandbox,
            },
            speed: self.speed,
        }
    }
}

/// `--environment` of the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SimEnvironment {
    /// Production keys.
    Production,
    /// Sandbox keys.
    Sandbox,
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration file and exit (0 valid, 1 invalid).
    Check,
}

/// The history store a `history` command works on (the daemon's flags, spelled the same).
#[derive(Debug, clap::Args)]
pub struct StorageArgs {
    /// Directory of the history store.
    #[arg(long = "storage.path", value_name = "DIR", default_value = "data/", global = true)]
    pub path: PathBuf,
    /// How long history is kept: the export's default start, and what retention keeps.
    #[arg(long = "storage.retention", value_name = "DURATION", default_value = "30d", value_parser = parse_retention, global = true)]
    pub retention: std::time::Duration,
}

/// `history` subcommands.
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Write made-up 10-minute history for the configured pairs (for benchmarks and demos),
    /// ending now; existing points at the same times are replaced.
    Fill {
        /// The configuration: its pairs.
        #[command(flatten)]
        file: ConfigFileArg,
        /// How many days.
        #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
    },
    /// Write every point of every pair the store holds, in time order per pair, to
    /// standard output. A running exporter holds its store: ask it instead, at
    /// /api/v1/history?format=csv (same columns).
    Export {
        /// The first time: RFC 3339 (2026-12-01T00:00:00Z) or a duration ago (7d).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// The end (exclusive), as --from; default now.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// csv (a header, then a line a point) or json (an array of objects).
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
    },
}

/// `history export --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// CSV with a header line.
    Csv,
    /// A JSON array.
    Json,
}

impl From<ExportFormat> for crate::history::export::Format {
    fn from(f: ExportFormat) -> Self {
        match f {
            ExportFormat::Csv => crate::history::export::Format::Csv,
            ExportFormat::Json => crate::history::export::Format::Json,
        }
    }
}

/// An RFC 3339 time, or a duration before now (`7d`, `90m`).
fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let ago = humantime::parse_duration(s).map_err(|_| {
        "expected an RFC 3339 time such as 2026-12-01T00:00:00Z or a duration ago such as 7d".to_owned()
    })?;
    chrono::TimeDelta::from_std(ago).map(|d| chrono::Utc::now() - d).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_in_both_spellings() {
        let cli = Cli::try_parse_from([
            "idauth-exporter",
            "--config.file=/etc/x.yaml",
            "--web.listen-address",
            ":9877",
            "--log.format=json",
            "--log.level=debug",
        ])
        .unwrap();
        assert_eq!(cli.config_file, PathBuf::from("/etc/x.yaml"));
        assert_eq!(cli.listen_address.as_deref(), Some(":9877"));
        assert_eq!(cli.log_format, LogFormat::Json);
        assert_eq!(cli.log_level, LogLevel::Debug);
        assert!(cli.command.is_none());
    }

    #[test]
    fn subcommands_take_the_config_flag_after_them() {
        let cli = Cli::try_parse_from(["idauth-exporter", "check", "--config.file=c.yaml", "NG", "BVN"]).unwrap();
        assert_eq!(cli.config_path(), std::path::Path::new("c.yaml"));
        match cli.command {
            Some(Command::Check { country, id_type, .. }) => {
                assert_eq!((country.as_deref(), id_type.as_deref()), (Some("NG"), Some("BVN")));
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["idauth-exporter", "config", "check", "--config.file", "c.yaml"]).unwrap();
        assert_eq!(cli.config_path(), std::path::Path::new("c.yaml"));
        assert!(matches!(cli.command, Some(Command::Config { action: ConfigCommand::Check, .. })));
        // Before the command, as the daemon takes it, too; else the default.
        let cli = Cli::try_parse_from(["idauth-exporter", "--config.file=b.yaml", "config", "check"]).unwrap();
        assert_eq!(cli.config_path(), std::path::Path::new("b.yaml"));
        let cli = Cli::try_parse_from(["idauth-exporter", "config", "check"]).unwrap();
        assert_eq!(cli.config_path(), std::path::Path::new(DEFAULT_CONFIG_FILE));
        assert!(Cli::try_parse_from(["idauth-exporter", "check", "NG"]).is_err());
        assert!(Cli::try_parse_from(["idauth-exporter", "--log.format=text"]).is_err());
    }

    #[test]
    fn the_demo_takes_its_address_after_it_and_no_configuration() {
        let cli = Cli::try_parse_from(["idauth-exporter", "demo", "--web.listen-address=127.0.0.1:0"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Demo { listen_address: Some(ref a) }) if a == "127.0.0.1:0"));
        assert!(Cli::try_parse_from(["idauth-exporter", "demo", "--config.file=x.yaml"]).is_err());
        assert!(Cli::try_parse_from(["idauth-exporter", "demo", "--storage.path=/tmp"]).is_err());
    }

    #[test]
    fn history_commands_take_the_storage_flags_after_them() {
        let cli = Cli::try_parse_from([
            "idauth-exporter",
            "history",
            "fill",
            "--config.file",
            "c.yaml",
            "--storage.path",
            "/tmp/s",
            "--days",
            "7",
        ])
        .unwrap();
        match cli.command {
            Some(Command::History { ref storage, action: HistoryCommand::Fill { days: 7, .. }, .. }) => {
                assert_eq!(
                    (cli.config_path(), storage.path.as_path()),
                    (std::path::Path::new("c.yaml"), std::path::Path::new("/tmp/s"))
                );
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from([
            "idauth-exporter",
            "history",
            "export",
            "--from=2026-12-01T00:00:00Z",
            "--to",
            "1h",
            "--format=json",
        ])
        .unwrap();
        match cli.command {
            Some(Command::History { action: HistoryCommand::Export { from, to, format }, .. }) => {
                assert_eq!(from, Some("2026-12-01T00:00:00Z".parse().unwrap()));
                assert!(to.unwrap() < chrono::Utc::now() - chrono::TimeDelta::minutes(59));
                assert_eq!(format, ExportFormat::Json);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["idauth-exporter", "history", "export", "--from=yesterday"]).is_err());
        assert!(Cli::try_parse_from(["idauth-exporter", "history", "fill", "--days=0"]).is_err());
        // The demo keeps its history in memory: no storage flag is offered there.
        assert!(Cli::try_parse_from(["idauth-exporter", "demo", "--storage.path=/tmp/s"]).is_err());
    }

    #[test]
    fn simulate_flags_become_simulator_options() {
        let cli = Cli::try_parse_from(["idauth-exporter", "simulate", "--environment=sandbox", "--speed=60"]).unwrap();
        let Some(Command::Simulate(args)) = cli.command else { panic!("{:?}", cli.command) };
        assert_eq!(
            args.options(),
            crate::simulator::Options {
                listen: "127.0.0.1:9878".to_owned(),
                scenario: None,
                partner_id: "085".to_owned(),
                api_key_env: "SMILE_ID_API_KEY".to_owned(),
                environment: crate::config::Environment::Sandbox,
                speed: 60.0,
            }
        );
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
