//! `cabinet.toml`: one serde struct, `deny_unknown_fields`, a doc comment per field, errors
//! located by file, line and field. `controller/cabinet.example.toml` is the commented example.

use std::path::{Path, PathBuf};

use intersections::diag::{from_toml, Diagnostics, FieldPath, Problem, SourceMap};
use serde::Deserialize;

/// The cabinet's configuration.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CabinetConfig {
    /// Region of the wire contract (`greenwave/v1/{region}/...`).
    pub region: String,
    /// Id of this intersection in the network file.
    pub intersection: String,
    /// Network file with this intersection's geometry, groups, stages and local plans
    /// (relative to this file).
    pub network: PathBuf,
    /// Folder for the report buffer and the last good plan (relative to this file).
    pub data_dir: PathBuf,
    /// Seconds between detector reports; default: one cycle of the plan in force (90 s when
    /// no plan runs).
    #[serde(default)]
    pub report_interval_s: Option<f64>,
    /// Seconds without a valid plan or heartbeat from the centre before the local
    /// time-of-day plans take over (NTCIP's backup time). Default 300.
    #[serde(default = "default_backup")]
    pub backup_time_s: f64,
    /// Offset of local time from UTC in minutes, for the time-of-day schedule (default 0).
    #[serde(default)]
    pub utc_offset_min: i32,
    /// At most this many reports are kept on disk while the broker is unreachable; past it
    /// the oldest are dropped and counted (default 10000: about a week of 1-minute reports).
    #[serde(default = "default_buffer")]
    pub buffer_max_reports: usize,
    /// How to run when no centre plan is in force: `"schedule"` (default) runs the local
    /// time-of-day plans coordinated; `"actuated"` runs isolated actuated control over the
    /// stage sequence of the scheduled local plan, its greens as maximum greens.
    #[serde(default)]
    pub local_mode: crate::cabinet::LocalMode,
    pub broker: BrokerConfig,
    pub centre: CentreConfig,
}

fn default_backup() -> f64 {
    300.0
}
fn default_buffer() -> usize {
    10_000
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker port (1883 plain, 8883 TLS).
    pub port: u16,
    /// MQTT client id; default `greenwave-{region}-{intersection}`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// User name for the broker.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the password (never the password itself in this file).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// TLS: the CA certificate (PEM). With it the connection uses TLS.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// TLS client certificate and key (PEM), for brokers that require them.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Keep-alive in seconds (default 15).
    #[serde(default = "default_keep_alive")]
    pub keep_alive_s: u64,
}

impl BrokerConfig {
    /// A plain (no TLS, anonymous) broker at `host:port` with the defaults of the file.
    pub fn plain(host: &str, port: u16, client_id: Option<String>) -> Self {
        BrokerConfig {
            host: host.into(),
            port,
            client_id,
            username: None,
            password_file: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            keep_alive_s: default_keep_alive(),
        }
    }
}

fn default_keep_alive() -> u64 {
    15
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentreConfig {
    /// Id of the centre's signing key, as plans and commands name it.
    pub key_id: String,
    /// The centre's Ed25519 public key, base64 of 32 bytes.
    pub public_key: String,
}

/// A loaded configuration with its paths made absolute against the file's folder.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: CabinetConfig,
    pub file: PathBuf,
}

/// Read and check `cabinet.toml`. Every problem is located.
pub fn load(path: &Path) -> Result<Loaded, Diagnostics> {
    parse(path, &intersections::diag::read_text(path)?)
}

/// Check a configuration text; `path` names it and anchors relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Loaded, Diagnostics> {
    let name = path.display().to_string();
    let map = SourceMap::new(&name, text);
    let mut cfg: CabinetConfig = from_toml(&map, text).map_err(|d| Diagnostics(vec![d]))?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut p = Vec::new();
    let root = FieldPath::root();
    for (field, v) in [("region", &cfg.region), ("intersection", &cfg.intersection)] {
        if v.is_empty() || v.contains(['/', '+', '#']) {
            p.push(Problem::new(
                root.key(field),
                format!(
                    "{v:?} must be non-empty without '/', '+' or '#' (it is part of MQTT topics)"
                ),
            ));
        }
    }
    if let Some(r) = cfg.report_interval_s {
        if !(r.is_finite() && (5.0..=3600.0).contains(&r)) {
            p.push(Problem::new(
                root.key("report_interval_s"),
                format!("{r} s is outside 5 to 3600"),
            ));
        }
    }
    if !(cfg.backup_time_s.is_finite() && (10.0..=65_535.0).contains(&cfg.backup_time_s)) {
        p.push(Problem::new(
            root.key("backup_time_s"),
            format!("{} s is outside 10 to 65535", cfg.backup_time_s),
        ));
    }
    if !(-14 * 60..=14 * 60).contains(&cfg.utc_offset_min) {
        p.push(Problem::new(
            root.key("utc_offset_min"),
            "must be within -840 to 840",
        ));
    }
    if cfg.buffer_max_reports == 0 {
        p.push(Problem::new(
            root.key("buffer_max_reports"),
            "must be at least 1",
        ));
    }
    if cfg.broker.host.is_empty() {
        p.push(Problem::new(
            root.key("broker").key("host"),
            "must not be empty",
        ));
    }
    if cfg.broker.port == 0 {
        p.push(Problem::new(
            root.key("broker").key("port"),
            "must not be 0",
        ));
    }
    if cfg.broker.cert_file.is_some() != cfg.broker.key_file.is_some() {
        p.push(Problem::new(
            root.key("broker").key("cert_file"),
            "cert_file and key_file go together",
        ));
    }
    if cfg.broker.cert_file.is_some() && cfg.broker.ca_file.is_none() {
        p.push(Problem::new(
            root.key("broker").key("ca_file"),
            "a client certificate needs TLS: set ca_file",
        ));
    }
    if let Err(e) = intersections::signing::Verifier25519::from_base64(
        &cfg.centre.key_id,
        &cfg.centre.public_key,
    ) {
        p.push(Problem::new(
            root.key("centre").key("public_key"),
            e.to_string(),
        ));
    }
    let abs = |q: &Path| {
        if q.is_absolute() {
            q.to_path_buf()
        } else {
            base.join(q)
        }
    };
    cfg.network = abs(&cfg.network);
    cfg.data_dir = abs(&cfg.data_dir);
    for f in [
        &mut cfg.broker.password_file,
        &mut cfg.broker.ca_file,
        &mut cfg.broker.cert_file,
        &mut cfg.broker.key_file,
    ]
    .into_iter()
    .flatten()
    {
        *f = abs(f);
    }
    if p.is_empty() {
        Ok(Loaded {
            config: cfg,
            file: path.to_path_buf(),
        })
    } else {
        Err(Diagnostics(p.into_iter().map(|x| map.locate(x)).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
region = "r1"
intersection = "C"
network = "net.toml"
data_dir = "data"
[broker]
host = "127.0.0.1"
port = 1883
[centre]
key_id = "centre-1"
public_key = "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
"#;

    #[test]
    fn good_config_resolves_paths() {
        let l = parse(Path::new("/etc/gw/cabinet.toml"), GOOD).unwrap();
        assert_eq!(l.config.network, PathBuf::from("/etc/gw/net.toml"));
        assert_eq!(l.config.backup_time_s, 300.0);
    }

    #[test]
    fn local_mode_defaults_to_schedule_and_takes_actuated() {
        use crate::cabinet::LocalMode;
        let l = parse(Path::new("cabinet.toml"), GOOD).unwrap();
        assert_eq!(l.config.local_mode, LocalMode::Schedule);
        let text = GOOD.replace("data_dir", "local_mode = \"actuated\"\ndata_dir");
        let l = parse(Path::new("cabinet.toml"), &text).unwrap();
        assert_eq!(l.config.local_mode, LocalMode::Actuated);
        let text = GOOD.replace("data_dir", "local_mode = \"adaptive\"\ndata_dir");
        let e = parse(Path::new("cabinet.toml"), &text).unwrap_err();
        assert!(e.to_string().contains("local_mode"), "{e}");
    }

    #[test]
    fn errors_are_located() {
        let bad = GOOD.replace("port = 1883", "port = 1883\nspeed = 3");
        let e = parse(Path::new("cabinet.toml"), &bad).unwrap_err();
        assert_eq!(e.0[0].line, Some(9), "{e}");
        assert!(e.to_string().contains("unknown field `speed`"), "{e}");
        let bad = GOOD
            .replace("public_key = \"", "public_key = \"xx")
            .replace("\"r1\"", "\"r/1\"");
        let e = parse(Path::new("cabinet.toml"), &bad).unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        assert!(e.to_string().contains("cabinet.toml:2: region"), "{e}");
        assert!(
            e.to_string().contains("cabinet.toml:11: centre.public_key"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod example {
    #[test]
    fn the_example_file_is_valid() {
        let p = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/cabinet.example.toml"));
        super::load(p).unwrap();
    }
}
