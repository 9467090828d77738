//! `greenwave serve`: the central service (`optimizer::serve`) with the optimizer's planner.
//! Assembly only.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Result};
use intersections::Ms;
use optimizer::serve::{load_config, optimizer_planner, serve_with_start_up, unix_now, ServeStats};

pub fn run(config: &Path) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cfg = load_config(config).map_err(|d| anyhow!("{d}"))?;
    // Plan from the counts of the last two rounds.
    let window = Ms::from_secs_f64(cfg.replan_interval_s * 2.0).unwrap_or(Ms::from_s(1800));
    // Start-up: the modes of the regions with a history, chosen once and kept.
    let operations = cfg.operations_from_history().map_err(|e| anyhow!("{e}"))?;
    let start_up = operations.start_up_decisions(unix_now());
    // The check as the benchmark's adaptive loop runs it (the last hour's estimates replayed,
    // then an hour from the switch, 3 seeds, 3%, a clear rejection on the first two), with
    // `check_horizon_s` and `check_early_reject`.
    let check = cfg.check();
    let planner = optimizer_planner(window, check, operations);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        // Ctrl-C or SIGTERM (what a service manager sends) stop the service the same way: the
        // series in memory go to the disk buffer before it exits.
        tokio::spawn(async move {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
            let _ = stop.send(true);
        });
        let stats = Arc::new(Mutex::new(ServeStats::default()));
        serve_with_start_up(cfg, planner, start_up, shutdown, stats)
            .await
            .map_err(|e| anyhow!("{e}"))
    })
}
