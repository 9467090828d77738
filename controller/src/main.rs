//! `controller`: the roadside cabinet binary.
//!
//! It never crash-loops: a missing or corrupt `cabinet.toml` (or network file) is reported with
//! located errors, and the cabinet runs on the last good copy of both (kept beside the config
//! as `<config>.last-good/`) or, with none, flashes yellow and retries every 30 s.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Parser;
use controller::cabinet::{Cabinet, Persisted, Settings};
use controller::config;
use controller::run::{run, Clock, NoField, Stats};
use intersections::load::load_network;
use intersections::signing::Verifier25519;

#[derive(Parser)]
#[command(
    name = "controller",
    version,
    about = "Greenwave roadside signal controller"
)]
struct Args {
    /// The cabinet configuration.
    #[arg(long, default_value = "cabinet.toml")]
    config: PathBuf,
    /// Run model time this many times faster than real time (tests and demos only).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Stop after this many seconds of model time (default: run until stopped).
    #[arg(long)]
    duration: Option<f64>,
}

fn last_good_dir(cfg: &Path) -> PathBuf {
    let mut s = cfg.as_os_str().to_owned();
    s.push(".last-good");
    PathBuf::from(s)
}

/// Load config and network; on success keep copies as the last good ones.
fn load_all(cfg_path: &Path) -> Result<(config::Loaded, intersections::Network), String> {
    let loaded = config::load(cfg_path).map_err(|d| d.to_string())?;
    let net = load_network(&loaded.config.network).map_err(|d| d.to_string())?;
    if net.intersection(&loaded.config.intersection).is_none() {
        return Err(format!(
            "{}: intersection: {:?} is not in network {}",
            cfg_path.display(),
            loaded.config.intersection,
            loaded.config.network.display()
        ));
    }
    Ok((loaded, net))
}

fn keep_last_good(cfg_path: &Path, loaded: &config::Loaded) {
    let dir = last_good_dir(cfg_path);
    let _ = std::fs::create_dir_all(&dir);
    // The copy points at the copied network, with absolute paths for the rest.
    if let Ok(text) = std::fs::read_to_string(cfg_path) {
        let _ = std::fs::copy(&loaded.config.network, dir.join("network.toml"));
        let mut doc: toml::Table = toml::from_str(&text).unwrap_or_default();
        doc.insert(
            "network".into(),
            toml::Value::String(dir.join("network.toml").display().to_string()),
        );
        doc.insert(
            "data_dir".into(),
            toml::Value::String(loaded.config.data_dir.display().to_string()),
        );
        let _ = std::fs::write(
            dir.join("cabinet.toml"),
            toml::to_string(&doc).unwrap_or_default(),
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let clock = Clock::real(args.speed);
    let (loaded, net) = loop {
        match load_all(&args.config) {
            Ok(ok) => {
                keep_last_good(&args.config, &ok.0);
                break ok;
            }
            Err(e) => {
                tracing::error!("configuration refused:\n{e}");
                let fallback = last_good_dir(&args.config).join("cabinet.toml");
                match load_all(&fallback) {
                    Ok(ok) => {
                        tracing::warn!(file = %fallback.display(), "running on the last good configuration");
                        break ok;
                    }
                    Err(_) => {
                        // No usable configuration at all: the heads flash (the cabinet's
                        // flasher holds them while no controller drives them); retry.
                        tracing::error!("no usable configuration: flashing; retrying in 30 s");
                        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                    }
                }
            }
        }
    };
    let cfg = loaded.config;
    std::fs::create_dir_all(&cfg.data_dir)?;
    let state_file = cfg.data_dir.join("state.json");
    let persisted: Persisted = std::fs::read(&state_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let verifier = Verifier25519::from_base64(&cfg.centre.key_id, &cfg.centre.public_key)?;
    let settings = Settings::from_config(&cfg, Some(state_file));
    let now = clock.now();
    let mut cabinet = Cabinet::new(settings, net, verifier, persisted, now)?;
    cabinet.set_local_mode(cfg.local_mode);
    let detectors = cabinet.intersection().detectors.len();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let stats = Arc::new(Mutex::new(Stats::default()));
    let duration = args.duration;
    let speed = args.speed;
    tokio::spawn(async move {
        match duration {
            Some(d) => {
                tokio::time::sleep(std::time::Duration::from_secs_f64(d / speed.max(0.001))).await
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        let _ = stop.send(true);
    });
    tracing::info!(intersection = %cfg.intersection, region = %cfg.region, "cabinet running");
    run(
        cfg,
        cabinet,
        Box::new(NoField { detectors }),
        clock,
        shutdown,
        stats.clone(),
    )
    .await?;
    let s = stats.lock().map(|s| s.clone()).unwrap_or_default();
    tracing::info!(
        ticks = s.ticks,
        max_late_ms = s.max_late_ms,
        reports_sent = s.reports_sent,
        "cabinet stopped"
    );
    Ok(())
}
