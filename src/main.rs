//! The `idauth-exporter` binary: parses flags and hands over to the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use idauth_exporter::cli::{Cli, Command, ConfigCommand, HistoryCommand, SimulateArgs, StorageArgs};
use idauth_exporter::model::Target;
use idauth_exporter::{app, check, config, demo, discovery, simulator, telemetry};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    idauth_exporter::allocator::configure();
    let cli = Cli::parse();
    telemetry::init(cli.log_level, cli.log_format);
    // One thread: the exporter waits on the network nearly all the time, and a scrape is
    // written a piece at a time, so a second worker bought no latency but cost memory
    // (its stack and the multi-thread scheduler, which alone links libm). The work that
    // blocks (bcrypt, the history store) has threads of its own.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            None => match daemon(&cli).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::FAILURE
                }
            },
            Some(Command::Check { ref country, ref id_type, .. }) => match run_check(&cli, country, id_type).await {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(check::ERROR)
                }
            },
            Some(Command::Config { action: ConfigCommand::Check, .. }) => config_check(&cli).await,
            Some(Command::History { ref storage, ref action, .. }) => match history(&cli, storage, action) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            },
            Some(Command::Simulate(ref args)) => match simulate(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::FAILURE
                }
            },
            Some(Command::Demo { ref listen_address }) => {
                let shutdown = CancellationToken::new();
                tokio::spawn(cancel_on_signal(shutdown.clone()));
                // Given after `demo`, or before it as for the daemon.
                let listen = listen_address.as_deref().or(cli.listen_address.as_deref());
                match demo::run(listen, shutdown).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!("idauth-exporter demo cannot run: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
        }
    })
}

/// Raises the open-files soft limit to the hard limit, as Prometheus does: every HTTP
/// connection is a file. Skipped when they are equal (systemd's `LimitNOFILE=` sets both).
fn raise_open_files_limit() {
    #[cfg(unix)]
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, hard)) if soft < hard => match rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard) {
            Ok(()) => tracing::info!(from = soft, to = hard, "raised the open-files soft limit to the hard limit"),
            Err(e) => tracing::warn!(soft, hard, error = %e, "cannot raise the open-files soft limit"),
        },
        Ok((soft, hard)) => tracing::info!(soft, hard, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot read the open-files limit"),
    }
}

async fn daemon(cli: &Cli) -> anyhow::Result<()> {
    raise_open_files_limit();
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let opts = app::DaemonOptions {
        config_file: cli.config_path().to_path_buf(),
        listen_address: cli.listen_address.clone(),
        web_config_file: cli.web_config_file.clone(),
        max_connections: cli.max_connections as usize,
        storage_path: cli.storage_path.clone(),
        storage_retention: cli.storage_retention,
    };
    app::run_daemon(opts, shutdown).await.context("idauth-exporter cannot run")
}

/// Cancels `token` on SIGTERM or Ctrl-C.
async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM can be handled");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    token.cancel();
}

async fn run_check(cli: &Cli, country: &Option<String>, id_type: &Option<String>) -> anyhow::Result<u8> {
    let loaded = config::load(cli.config_path())?;
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    let only = match (country, id_type) {
        (Some(c), Some(i)) => Some(Target::new(c.to_uppercase().parse()?, i.to_uppercase().parse()?)),
        _ => None,
    };
    let report = check::run(&loaded.config, only).await?;
    print!("{}", report.render(chrono::Utc::now()));
    Ok(report.exit_code())
}

async fn config_check(cli: &Cli) -> ExitCode {
    println!("Checking {}", cli.config_path().display());
    match config::load(cli.config_path()) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                println!("  {w}");
            }
            let c = &loaded.config;
            println!(
                "  SUCCESS: {} pair{}, api {:?}, {} environment, schedule {:?}, listening on {}",
                c.targets.len(),
                if c.targets.len() == 1 { "" } else { "s" },
                c.smile_id.api,
                c.smile_id.environment.as_str(),
                c.poll.schedule.as_str(),
                c.web.listen_address
            );
            for w in &c.notify.webhooks {
                // Not the query: it may carry a token.
                let mut url = w.url.clone();
                url.set_query(None);
                let list = |v: Vec<String>| if v.is_empty() { "all".to_owned() } else { v.join(",") };
                println!(
                    "  webhook {}: {url} (countries {}, id_types {}, to {}; timeout {})",
                    w.name,
                    list(w.countries.iter().map(ToString::to_string).collect()),
                    list(w.id_types.iter().map(ToString::to_string).collect()),
                    list(w.states.iter().map(|s| s.as_str().to_owned()).collect()),
                    idauth_exporter::model::fmt_duration(w.timeout)
                );
            }
            // What discovery would add; an unreachable catalogue is no configuration error.
            if c.discovery.enabled {
                match discovery::preview(c).await {
                    Ok(p) => print!("{}", p.render(c.targets.len())),
                    Err(e) => println!("  discovery: cannot build the HTTP client: {e}"),
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("  FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `history fill` and `history export`, on a store no exporter holds.
fn history(cli: &Cli, storage: &StorageArgs, action: &HistoryCommand) -> anyhow::Result<()> {
    use idauth_exporter::history::History;
    let history = History::open_for_command(&storage.path, storage.retention)?;
    let now = chrono::Utc::now();
    match action {
        HistoryCommand::Fill { days, .. } => {
            let loaded = config::load(cli.config_path())?;
            let targets = &loaded.config.targets;
            let span = chrono::TimeDelta::days(i64::from(*days));
            let written = history.fill(targets, span, now)?;
            eprintln!(
                "wrote {written} points: {} pairs, {days} days of 10-minute polls, into {}",
                targets.len(),
                storage.path.join(idauth_exporter::history::FILE_NAME).display()
            );
        }
        HistoryCommand::Export { from, to, format } => {
            let from = from.unwrap_or(now - history.retention());
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let n = history.export(from, to.unwrap_or(now), (*format).into(), &mut out)?;
            std::io::Write::flush(&mut out)?;
            eprintln!("exported {n} points");
        }
    }
    Ok(())
}

async fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    simulator::run(&args.options(), &|name| std::env::var(name).ok(), shutdown).await?;
    Ok(())
}
