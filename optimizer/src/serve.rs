//! `greenwave serve`: the central service for one or more regions. MQTT in (detector reports,
//! plan acks), plans out (signed, per coordination group, through [`Deployer`]), time series
//! to InfluxDB or the data directory ([`SeriesWriter`]).
//!
//! The planning itself is passed in as a [`Planner`], so the service is the same whatever
//! algorithm decides; the CLI gives it the optimizer's. A planner sees the region's network
//! and the counts ingested so far, and returns for each coordination group either plans to
//! deploy or nothing (keep what runs), with the figures that justify the decision.
//!
//! With a `[console]` table it also serves the engineer console ([`crate::console`]): the
//! live network, every decision with its figures, approvals, rollbacks and commands, each
//! human action in the audit log first.
//!
//! Configuration: one TOML file, `deny_unknown_fields`, located errors (`serve.example.toml`
//! is the commented example).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use intersections::diag::{from_toml, Diagnostics, FieldPath, Problem, SourceMap};
use intersections::load::{load_demand_for, load_network};
use intersections::messages::{Operation, PlanDeployment, MAX_GREEN_FACTOR_RANGE};
use intersections::model::Network;
use intersections::signing::Signer25519;
use intersections::spec::PlanSpec;
use intersections::Ms;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde::Deserialize;
use tokio::sync::{watch, Mutex};

use crate::adaptive::region_groups;
use crate::console::http::App;
use crate::console::{load_operators, Approval, Centre, ConsoleConfig};
use crate::deploy::{Deployer, Publish};
use crate::ingest::CountStore;
use crate::timeseries::{
    points_from_alarm, points_from_decision, points_from_flows, points_from_measured,
    points_from_report, points_from_status, run_flusher, SeriesTarget, SeriesWriter,
};

/// The service's configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Where plans history, the series buffer and (without InfluxDB) the series are kept.
    pub data_dir: PathBuf,
    /// Seconds between re-planning rounds (5 to 15 minutes is usual).
    #[serde(default = "default_replan")]
    pub replan_interval_s: f64,
    /// Also check each candidate run isolated actuated, next to coordinated, and deploy
    /// whichever the check finds better (default true; false: coordinated only).
    #[serde(default = "default_offer_actuated")]
    pub offer_actuated: bool,
    /// Isolated actuation runs each stage up to its planned green times this factor (default
    /// 2.5; 1.0 to 3.0, the limits the cabinets enforce).
    #[serde(default = "default_max_green_factor")]
    pub actuated_max_green_factor: f64,
    /// For a region with a `history` (and `offer_actuated`): let the start-up choice also
    /// take, per coordination group, the planner that prices permissive left turns by gap
    /// acceptance where the history says it pays (default true; false: the plain planner
    /// everywhere). docs/optimizer.md, "Coordinated or actuated".
    #[serde(default = "default_offer_left_price")]
    pub offer_left_price: bool,
    /// How long past the switch the check measures each candidate and the plans in force,
    /// seconds (default: the adaptive loop's, 3600; 600 to 7200). Shorter checks are cheaper
    /// on a large region but pass more re-plans whose queues spill back later
    /// (docs/benchmarks.md, "The check's horizon").
    #[serde(default)]
    pub check_horizon_s: Option<f64>,
    /// Let the check stop after its first seeds when they reject every candidate beyond doubt
    /// (default true; false: every seed, every time). docs/optimizer.md, "Stopping early".
    #[serde(default = "default_check_early_reject")]
    pub check_early_reject: bool,
    /// Least improvement of the check's mean delay for a candidate to be deployed, percent
    /// (default: the adaptive loop's, 3; from 0 to under 100).
    #[serde(default)]
    pub check_threshold_pct: Option<f64>,
    /// Seeds of the check (default: the adaptive loop's, 3; 1 to 20). A candidate is deployed
    /// only on every seed's runs; more seeds cost proportionally more time per round.
    #[serde(default)]
    pub check_seeds: Option<usize>,
    pub broker: Broker,
    /// The centre's signing key.
    pub signing: Signing,
    /// InfluxDB v2 write API; without it, series go to `data_dir/series/`.
    #[serde(default)]
    pub influx: Option<Influx>,
    /// The regions this instance owns.
    pub regions: Vec<Region>,
    /// The engineer console (HTTP API and web page); without it, none is served.
    #[serde(default)]
    pub console: Option<ConsoleConfig>,
}

fn default_replan() -> f64 {
    600.0
}

fn default_offer_actuated() -> bool {
    true
}

fn default_offer_left_price() -> bool {
    true
}

fn default_check_early_reject() -> bool {
    true
}

fn default_max_green_factor() -> f64 {
    crate::adaptive::DEFAULT_ACTUATED_MAX_GREEN_FACTOR
}

/// The operations the planner offers the check besides coordinated.
#[derive(Clone, Debug, PartialEq)]
pub struct OperationChoice {
    /// Isolated actuated with these parameters (`None`: coordinated only).
    pub actuated: Option<intersections::control::ActuatedParams>,
    /// By region id, the modes chosen at start-up from the region's history
    /// ([`ServeConfig::operations_from_history`]); used only when `actuated` is offered. Each
    /// round of such a region checks one candidate, run in those modes. A region missing here
    /// is checked run coordinated and, with `actuated`, run actuated as a whole.
    pub from_history: BTreeMap<String, HistoryModes>,
    /// By region id, the region's history (demand file), read at start-up for every region
    /// that names one, whatever the operations offered: the estimator's prior (turning
    /// shares, the time-of-day profile, and the flows of movements no healthy detector
    /// counts).
    pub priors: BTreeMap<String, intersections::demand::Demand>,
    /// The start-up choice from a history may price permissive left turns per group
    /// ([`ServeConfig::offer_left_price`]).
    pub offer_left_price: bool,
}

impl Default for OperationChoice {
    /// Actuated offered with the plan's greens times the default factor as maximums, the
    /// default passage; the left-turn price offered; no modes from a history.
    fn default() -> Self {
        OperationChoice {
            actuated: Some(intersections::control::ActuatedParams {
                max_green_factor: default_max_green_factor(),
                ..Default::default()
            }),
            from_history: BTreeMap::new(),
            priors: BTreeMap::new(),
            offer_left_price: default_offer_left_price(),
        }
    }
}

impl OperationChoice {
    /// The records of the start-up choices, by region, for the decision log
    /// ([`serve_with_start_up`]); `now`: when they were made.
    pub fn start_up_decisions(&self, now: Ms) -> Vec<(String, GroupDecision)> {
        self.from_history
            .iter()
            .map(|(r, m)| (r.clone(), m.decision(r, now)))
            .collect()
    }
}

impl ServeConfig {
    /// The check each round runs: the adaptive loop's ([`crate::adaptive::AdaptiveParams`]'s
    /// default: the last hour's estimates replayed, then an hour from the switch, 3 seeds, 3%,
    /// stopping early on a clear rejection), with `check_horizon_s` and `check_early_reject`.
    pub fn check(&self) -> crate::decide::ValidateParams {
        let mut v = crate::adaptive::AdaptiveParams::default()
            .validate
            .expect("the adaptive loop checks by default");
        if let Some(h) = self.check_horizon_s.and_then(Ms::from_secs_f64) {
            v.horizon = h;
        }
        v.early_reject = self.check_early_reject;
        if let Some(t) = self
            .check_threshold_pct
            .and_then(|t| crate::decide::threshold_from_pct(t).ok())
        {
            v.threshold = t;
        }
        if let Some(s) = self
            .check_seeds
            .and_then(|n| crate::decide::check_seeds(n).ok())
        {
            v.seeds = s;
        }
        v
    }

    /// The operations this configuration offers the check (no modes from a history: see
    /// [`ServeConfig::operations_from_history`]).
    pub fn operations(&self) -> OperationChoice {
        OperationChoice {
            actuated: self
                .offer_actuated
                .then(|| intersections::control::ActuatedParams {
                    max_green_factor: self.actuated_max_green_factor,
                    ..Default::default()
                }),
            from_history: BTreeMap::new(),
            priors: BTreeMap::new(),
            offer_left_price: self.offer_left_price,
        }
    }

    /// [`ServeConfig::operations`] with, for each region with a `history`, the history as
    /// the estimator's prior and, when actuation is offered, the modes chosen from it
    /// ([`HistoryModes::choose`]), each logged. The
    /// service's start-up: it simulates every history twice per seed, so it takes a while on a
    /// large region.
    pub fn operations_from_history(&self) -> Result<OperationChoice, ServeError> {
        let mut ops = self.operations();
        for r in &self.regions {
            let Some(path) = &r.history else { continue };
            let setup = |d: Diagnostics| ServeError::Setup(format!("region {}: {d}", r.id));
            let net = load_network(&r.network).map_err(setup)?;
            let demand = load_demand_for(path, &net).map_err(setup)?;
            ops.priors.insert(r.id.clone(), demand.clone());
            let Some(actuated) = ops.actuated.clone() else {
                tracing::info!(
                    region = %r.id,
                    "offer_actuated = false: the history is the estimator's prior only, every group runs coordinated"
                );
                continue;
            };
            tracing::info!(region = %r.id, history = %path.display(), "choosing coordinated or actuated per group from the history");
            let m = HistoryModes::choose(&net, demand, path, &actuated, ops.offer_left_price)
                .map_err(|e| ServeError::Setup(format!("region {}: {e}", r.id)))?;
            for g in &m.groups {
                tracing::info!(region = %r.id, group = %g.group, mode = g.operation.mode(), "mode from the history");
            }
            tracing::info!(region = %r.id, priced = ?m.priced_ids, "permissive left turns priced (from the history)");
            ops.from_history.insert(r.id.clone(), m);
        }
        Ok(ops)
    }
}

/// How one coordination group (or one signal outside any group) runs, as chosen from a
/// history.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GroupMode {
    /// Coordination group id, or the intersection id for a signal outside any group.
    pub group: String,
    /// Coordinated, or isolated actuated with the factor the choice was made with.
    pub operation: Operation,
    pub intersections: Vec<String>,
}

/// A region's modes, chosen once at start-up from its demand history as the benchmark's
/// adaptive loop chooses them (docs/optimizer.md, "Coordinated or actuated").
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryModes {
    /// The history (demand file).
    pub history: PathBuf,
    /// The intersections that run isolated actuated (whole groups); the others coordinated.
    pub actuated_at: Vec<intersections::IntersectionIdx>,
    /// Their ids, in the same order.
    pub actuated_ids: Vec<String>,
    /// Every group's mode.
    pub groups: Vec<GroupMode>,
    /// The factor of isolated actuation the choice was made with.
    pub max_green_factor: f64,
    /// The seeds of the simulations of the history (which run its whole duration).
    pub seeds: Vec<u64>,
    /// The history itself: the estimator's prior (turning shares, and the time-of-day
    /// profile its filter follows).
    pub demand: intersections::demand::Demand,
    /// The plans for the history's mean flows (the region's base plans): the check is
    /// offered them beside every re-plan, as in the benchmark's adaptive loop
    /// ([`crate::adaptive::AdaptiveParams::offer_history_plans`]).
    pub plans: Vec<(intersections::IntersectionIdx, intersections::Plan)>,
    /// The planner the region re-plans with: permissive left turns priced where the history
    /// says it pays ([`crate::adaptive::commission`]).
    pub planner: crate::webster::PlanParams,
    /// The ids of the intersections whose permissive left turns are priced (whole groups).
    pub priced_ids: Vec<String>,
}

impl HistoryModes {
    /// [`crate::adaptive::choose_actuated`] on `history` (a demand file of `net`, read from
    /// `path`): the Webster plans for its mean flows ([`crate::adaptive::webster_plans`]) run
    /// coordinated and isolated actuated with `actuated`'s `max_green_factor`, over the
    /// history's duration, with the seeds the adaptive loop commissions with
    /// ([`crate::adaptive::AdaptiveParams::commissioning_seeds`]); with `offer_left_price`,
    /// also with the plans of the planner that prices permissive left turns, per group
    /// ([`crate::adaptive::commission`]). The groups chosen actuated run with `actuated`.
    pub fn choose(
        net: &Network,
        history: intersections::demand::Demand,
        path: &Path,
        actuated: &intersections::control::ActuatedParams,
        offer_left_price: bool,
    ) -> Result<HistoryModes, String> {
        use crate::adaptive::{commission_with, webster_plans, AdaptiveParams};
        let max_green_factor = actuated.max_green_factor;
        let params = AdaptiveParams {
            actuated_max_green_factor: Some(max_green_factor),
            offer_left_price,
            ..AdaptiveParams::default()
        };
        let seeds = params.commissioning_seeds.clone();
        let scenario = simulator::Scenario::new(
            net.clone(),
            history.clone(),
            simulator::SimConfig::default(),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        // The plans for the history's mean flows (which groups have one), then the adaptive
        // loop's commissioning on them: the planner (where it prices permissive left turns)
        // and where to run actuated; the base plans are then the chosen planner's.
        let plans = webster_plans(&scenario, &params.plan)
            .map_err(|e| format!("{}: no plans for its mean flows: {e}", path.display()))?;
        let commissioned = commission_with(&scenario, &plans, &params)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let plans = webster_plans(&scenario, &commissioned.plan)
            .map_err(|e| format!("{}: no plans for its mean flows: {e}", path.display()))?;
        let actuated_at = commissioned.actuated_at.clone();
        let priced_ids = commissioned
            .priced_at(net)
            .iter()
            .map(|i| net.intersections[i.0].id.clone())
            .collect();
        let groups = region_groups(net)
            .into_iter()
            .filter(|(_, members)| plans.iter().any(|(i, _)| members.contains(i)))
            .map(|(group, members)| GroupMode {
                group,
                operation: Operation::from_actuated(
                    members
                        .iter()
                        .any(|i| actuated_at.contains(i))
                        .then_some(actuated),
                ),
                intersections: members
                    .iter()
                    .map(|i| net.intersections[i.0].id.clone())
                    .collect(),
            })
            .collect();
        Ok(HistoryModes {
            history: path.to_path_buf(),
            actuated_ids: actuated_at
                .iter()
                .map(|i| net.intersections[i.0].id.clone())
                .collect(),
            actuated_at,
            groups,
            max_green_factor,
            seeds,
            demand: history,
            plans,
            planner: commissioned.plan,
            priced_ids,
        })
    }

    /// The start-up record of `region` for the decision log: region-wide (group `*`), no
    /// plans; `now`: when the choice was made.
    pub fn decision(&self, region: &str, now: Ms) -> GroupDecision {
        let mode = |g: &GroupMode| g.operation.mode();
        let n = self.groups.iter().filter(|g| mode(g) == "actuated").count();
        let region_mode = if n == 0 {
            "coordinated"
        } else if n == self.groups.len() {
            "actuated"
        } else {
            "mixed"
        };
        let list = |m: &str| {
            let gs: Vec<&str> = self
                .groups
                .iter()
                .filter(|g| mode(g) == m)
                .map(|g| g.group.as_str())
                .collect();
            if gs.is_empty() {
                "none".to_string()
            } else {
                gs.join(", ")
            }
        };
        GroupDecision {
            group: "*".into(),
            plans: Vec::new(),
            operation: Operation::Coordinated,
            record: serde_json::json!({
                "region": region,
                "time_ms": now.0,
                "what": "modes from history",
                "modes_from": "history",
                "actuated": self.actuated_ids,
                "detail": {
                    "mode": region_mode,
                    "history": self.history.display().to_string(),
                    "groups": self.groups,
                    "max_green_factor": self.max_green_factor,
                    "seeds": self.seeds,
                    "duration_s": self.demand.duration().as_secs_f64(),
                    "permissive_lefts_priced_at": self.priced_ids,
                    "reason": format!(
                        "chosen from the history {}: actuated {}; coordinated {}; permissive left turns priced at {}",
                        self.history.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
                        list("actuated"),
                        list("coordinated"),
                        if self.priced_ids.is_empty() { "none".to_string() } else { self.priced_ids.join(", ") }
                    ),
                },
            }),
            flows: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub client_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signing {
    /// Key id the controllers are configured with.
    pub key_id: String,
    /// File holding the base64 of the 32-byte Ed25519 secret seed (never the key itself here).
    pub secret_key_file: PathBuf,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Influx {
    pub url: String,
    pub org: String,
    pub bucket: String,
    /// File holding the API token.
    pub token_file: PathBuf,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub id: String,
    /// The region's network file.
    pub network: PathBuf,
    /// `auto`: a candidate that passed the simulation check is deployed at once; `manual`: it
    /// waits in the console until an operator approves or rejects it.
    #[serde(default)]
    pub approve: Approval,
    /// The region's demand history: a demand file of its network (the time-of-day flows the
    /// centre has). With `offer_actuated`, the service chooses from it once at start-up, per
    /// coordination group, coordinated or isolated actuated, and keeps those modes in every
    /// round; without a history each round checks the region run either way as a whole
    /// (docs/optimizer.md, "Coordinated or actuated").
    #[serde(default)]
    pub history: Option<PathBuf>,
}

/// Read and check the configuration; relative paths are relative to the file.
/// A detector report from the payload of `topic` (`greenwave/v1/{region}/{intersection}/
/// detectors`), checked against its topic and the region's network: the report must name the
/// region and intersection of its topic, and the intersection must have every detector it
/// counts. The error says what and where (the topic, the field); nothing of a refused report
/// is stored.
pub fn report_for_topic(
    topic: &str,
    net: &Network,
    payload: &[u8],
) -> Result<intersections::messages::DetectorReport, String> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let r: intersections::messages::DetectorReport = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." {
                String::new()
            } else {
                format!("{path}: ")
            };
            format!("{topic}: {at}not a detector report: {}", e.into_inner())
        })?;
    let parts: Vec<&str> = topic.split('/').collect();
    let (region, intersection) = (
        parts.get(2).copied().unwrap_or_default(),
        parts.get(3).copied().unwrap_or_default(),
    );
    if r.region != region {
        return Err(format!(
            "{topic}: region: {:?} is not the topic's {region:?}",
            r.region
        ));
    }
    if r.intersection != intersection {
        return Err(format!(
            "{topic}: intersection: {:?} is not the topic's {intersection:?}",
            r.intersection
        ));
    }
    let Some(ix) = net.intersection(&r.intersection) else {
        return Err(format!(
            "{topic}: intersection: {:?} is not in network {:?}",
            r.intersection, net.name
        ));
    };
    let dets = &net.intersections[ix.0].detectors;
    for (k, d) in r.detectors.iter().enumerate() {
        if !dets.iter().any(|x| x.id == d.detector) {
            return Err(format!(
                "{topic}: detectors[{k}].detector: intersection {:?} has no detector {:?}",
                r.intersection, d.detector
            ));
        }
    }
    Ok(r)
}

pub fn load_config(path: &Path) -> Result<ServeConfig, Diagnostics> {
    let name = path.display().to_string();
    let text = intersections::diag::read_text(path)?;
    let map = SourceMap::new(&name, &text);
    let mut cfg: ServeConfig = from_toml(&map, &text).map_err(|d| Diagnostics(vec![d]))?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let abs = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let mut p = Vec::new();
    let root = FieldPath::root();
    if !(cfg.replan_interval_s.is_finite() && (60.0..=3600.0).contains(&cfg.replan_interval_s)) {
        p.push(Problem::new(
            root.key("replan_interval_s"),
            format!("{} s is outside 60 to 3600", cfg.replan_interval_s),
        ));
    }
    if let Some(h) = cfg.check_horizon_s {
        if !(h.is_finite() && (600.0..=7200.0).contains(&h)) {
            p.push(Problem::new(
                root.key("check_horizon_s"),
                format!("{h} s is outside 600 to 7200"),
            ));
        }
    }
    if let Some(Err(e)) = cfg
        .check_threshold_pct
        .map(crate::decide::threshold_from_pct)
    {
        p.push(Problem::new(root.key("check_threshold_pct"), e));
    }
    if let Some(Err(e)) = cfg.check_seeds.map(crate::decide::check_seeds) {
        p.push(Problem::new(root.key("check_seeds"), e));
    }
    if !MAX_GREEN_FACTOR_RANGE.contains(&cfg.actuated_max_green_factor) {
        p.push(Problem::new(
            root.key("actuated_max_green_factor"),
            format!(
                "{} is outside {} to {} (the limits the cabinets enforce)",
                cfg.actuated_max_green_factor,
                MAX_GREEN_FACTOR_RANGE.start(),
                MAX_GREEN_FACTOR_RANGE.end()
            ),
        ));
    }
    if cfg.regions.is_empty() {
        p.push(Problem::new(
            root.key("regions"),
            "an instance owns at least one region",
        ));
    }
    cfg.data_dir = abs(&cfg.data_dir);
    cfg.signing.secret_key_file = abs(&cfg.signing.secret_key_file);
    if let Some(i) = cfg.influx.as_mut() {
        i.token_file = abs(&i.token_file);
        if let Err(e) = crate::timeseries::check_url(&i.url) {
            p.push(Problem::new(root.key("influx").key("url"), e));
        }
    }
    if let Some(c) = cfg.console.as_mut() {
        let at = root.key("console");
        c.operators_file = abs(&c.operators_file);
        if c.listen.parse::<std::net::SocketAddr>().is_err() {
            p.push(Problem::new(
                at.key("listen"),
                format!(
                    "{:?} is not an address and port like 127.0.0.1:8080",
                    c.listen
                ),
            ));
        }
        if let Err(e) = load_operators(&c.operators_file) {
            p.push(Problem::new(at.key("operators_file"), e));
        }
        if !(c.stale_after_s.is_finite() && (5.0..=3600.0).contains(&c.stale_after_s)) {
            p.push(Problem::new(
                at.key("stale_after_s"),
                format!("{} s is outside 5 to 3600", c.stale_after_s),
            ));
        }
        if !(c.command_validity_s.is_finite() && (10.0..=3600.0).contains(&c.command_validity_s)) {
            p.push(Problem::new(
                at.key("command_validity_s"),
                format!("{} s is outside 10 to 3600", c.command_validity_s),
            ));
        }
    }
    // Problems found in the history files, located there, after their config line.
    let mut in_files = Vec::new();
    for (i, r) in cfg.regions.iter_mut().enumerate() {
        r.network = abs(&r.network);
        if let Some(h) = r.history.as_mut() {
            *h = abs(h);
        }
        if r.id.is_empty() || r.id.contains(['/', '+', '#']) {
            p.push(Problem::new(
                root.key("regions").index(i).key("id"),
                "must be non-empty without '/', '+' or '#'",
            ));
        }
        if !r.network.exists() {
            p.push(Problem::new(
                root.key("regions").index(i).key("network"),
                format!("{} does not exist", r.network.display()),
            ));
        } else if let Some(h) = &r.history {
            let at = root.key("regions").index(i).key("history");
            if !h.exists() {
                p.push(Problem::new(at, format!("{} does not exist", h.display())));
            } else {
                // Checked against the region's network, as it will be used.
                let checked = load_network(&r.network)
                    .map_err(|d| (root.key("regions").index(i).key("network"), &r.network, d))
                    .and_then(|net| load_demand_for(h, &net).map_err(|d| (at.clone(), h, d)));
                if let Err((at, file, d)) = checked {
                    in_files.push(
                        map.locate(Problem::new(at, format!("{} has errors:", file.display()))),
                    );
                    in_files.extend(d.0);
                }
            }
        }
    }
    if p.is_empty() && in_files.is_empty() {
        Ok(cfg)
    } else {
        let mut all: Vec<_> = p.into_iter().map(|x| map.locate(x)).collect();
        all.extend(in_files);
        Err(Diagnostics(all))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Series(#[from] crate::timeseries::SeriesError),
}

/// A planner's answer for one coordination group.
#[derive(Clone, Debug)]
pub struct GroupDecision {
    /// Coordination group id (or the intersection id, for one outside any group).
    pub group: String,
    /// Plans to deploy, one per member; empty to keep what runs.
    pub plans: Vec<(String, PlanSpec)>,
    /// How the members run them (the same for the whole group).
    pub operation: Operation,
    /// The figures behind the decision (before/after), recorded for the console.
    pub record: serde_json::Value,
    /// The estimated flows of the intersections the decision is about (the group's members,
    /// or the whole region for a region-wide decision), for the time series; empty when the
    /// planner has none.
    pub flows: Vec<crate::estimate::EstimatedFlow>,
}

/// The deployments (plan and operation) the region's controllers acknowledged from the
/// centre, by intersection id; an intersection missing runs its local time-of-day plans.
pub type InForce = BTreeMap<String, PlanDeployment>;

/// Decides plans for a region from the counts ingested so far and the plans in force.
pub type Planner =
    Arc<dyn Fn(&str, &Network, &CountStore, &InForce, Ms) -> Vec<GroupDecision> + Send + Sync>;

/// Model time of the service: Unix milliseconds. The service's loop is an edge; it may read
/// the wall clock.
#[allow(clippy::disallowed_methods)]
pub fn unix_now() -> Ms {
    Ms(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0))
}

/// What the service did, for tests and the console.
#[derive(Clone, Debug, Default)]
pub struct ServeStats {
    pub reports: u64,
    pub duplicates: u64,
    pub refused: u64,
    pub rounds: u64,
    pub deployments: u64,
    /// Group deployments every member acknowledged.
    pub deployed: u64,
    pub rolled_back: u64,
    pub decisions: Vec<serde_json::Value>,
    /// Where the console listens, once it does.
    pub console_addr: Option<std::net::SocketAddr>,
}

/// Publish messages with QoS 1; a full request queue is logged, never waited on.
fn publish(client: &AsyncClient, msgs: Vec<Publish>) {
    for m in msgs {
        if let Err(e) = client.try_publish(m.topic.clone(), QoS::AtLeastOnce, m.retain, m.payload) {
            tracing::warn!(topic = %m.topic, error = %e, "publish failed");
        }
    }
}

fn lock(centre: &std::sync::Mutex<Centre>) -> std::sync::MutexGuard<'_, Centre> {
    // A panic while holding the lock leaves the data as it was between two whole calls.
    centre.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run the service until `stop` turns true.
pub async fn serve(
    cfg: ServeConfig,
    planner: Planner,
    stop: watch::Receiver<bool>,
    stats: Arc<std::sync::Mutex<ServeStats>>,
) -> Result<(), ServeError> {
    serve_with_start_up(cfg, planner, Vec::new(), stop, stats).await
}

/// [`serve`], first recording in the decision log what the planner chose at start-up, as
/// `(region, decision)` (the modes from the regions' histories,
/// [`OperationChoice::start_up_decisions`]), so the console shows it from the start.
pub async fn serve_with_start_up(
    cfg: ServeConfig,
    planner: Planner,
    start_up: Vec<(String, GroupDecision)>,
    mut stop: watch::Receiver<bool>,
    stats: Arc<std::sync::Mutex<ServeStats>>,
) -> Result<(), ServeError> {
    let seed = std::fs::read_to_string(&cfg.signing.secret_key_file).map_err(|e| {
        ServeError::Setup(format!("{}: {e}", cfg.signing.secret_key_file.display()))
    })?;
    let mut networks = BTreeMap::new();
    let mut stores = BTreeMap::new();
    let mut regions = Vec::new();
    let first_version = unix_now().0.max(0) as u64;
    for r in &cfg.regions {
        let net = load_network(&r.network).map_err(|d| ServeError::Setup(format!("{d}")))?;
        stores.insert(r.id.clone(), CountStore::new(Ms::from_s(4 * 3600)));
        let signer = Signer25519::from_base64(&cfg.signing.key_id, &seed).map_err(|e| {
            ServeError::Setup(format!("{}: {e}", cfg.signing.secret_key_file.display()))
        })?;
        let dep = Deployer::new(&r.id, signer, first_version);
        regions.push((r.id.clone(), net.clone(), r.approve, dep));
        networks.insert(r.id.clone(), net);
    }
    let (stale_after, command_validity) = cfg
        .console
        .as_ref()
        .and_then(|c| {
            Ms::from_secs_f64(c.stale_after_s).zip(Ms::from_secs_f64(c.command_validity_s))
        })
        .unwrap_or((Ms::from_s(90), Ms::from_s(60)));
    let centre = Arc::new(std::sync::Mutex::new(
        Centre::new(regions, Some(&cfg.data_dir), stale_after, command_validity).map_err(|e| {
            ServeError::Setup(format!(
                "{}: {e}",
                cfg.data_dir.join("decisions.jsonl").display()
            ))
        })?,
    ));
    let target = match &cfg.influx {
        Some(i) => SeriesTarget::Influx {
            url: i.url.clone(),
            org: i.org.clone(),
            bucket: i.bucket.clone(),
            token: std::fs::read_to_string(&i.token_file)
                .map_err(|e| ServeError::Setup(format!("{}: {e}", i.token_file.display())))?
                .trim()
                .to_string(),
        },
        None => SeriesTarget::Files,
    };
    let series = Arc::new(Mutex::new(SeriesWriter::open(
        target,
        &cfg.data_dir,
        10_000,
    )?));
    let flusher = tokio::spawn(run_flusher(
        series.clone(),
        Duration::from_secs(1),
        stop.clone(),
    ));

    let id = cfg.broker.client_id.clone().unwrap_or_else(|| {
        let ids: Vec<&str> = cfg.regions.iter().map(|r| r.id.as_str()).collect();
        format!("greenwave-optimizer-{}", ids.join("+"))
    });
    let mut o = MqttOptions::new(id, cfg.broker.host.clone(), cfg.broker.port);
    o.set_keep_alive(Duration::from_secs(15));
    // A persistent session: the broker keeps the subscriptions and queues the QoS 1 reports,
    // acks and statuses that arrive while the service is away, and hands them over when it
    // connects again under the same id.
    o.set_clean_session(false);
    let (client, mut eventloop) = AsyncClient::new(o, 1024);
    for (region, d) in start_up {
        stats
            .lock()
            .map(|mut s| s.decisions.push(d.record.clone()))
            .unwrap_or(());
        let out = lock(&centre).on_decisions(unix_now(), &region, vec![d]);
        publish(&client, out);
    }

    let console = match &cfg.console {
        Some(c) => {
            let operators = load_operators(&c.operators_file).map_err(ServeError::Setup)?;
            let publisher = {
                let client = client.clone();
                Arc::new(move |msgs: Vec<Publish>| publish(&client, msgs))
            };
            let app =
                App::new(centre.clone(), operators, &cfg.data_dir, publisher).map_err(|e| {
                    ServeError::Setup(format!(
                        "{}: {e}",
                        cfg.data_dir.join("audit.jsonl").display()
                    ))
                })?;
            let listener = tokio::net::TcpListener::bind(&c.listen)
                .await
                .map_err(|e| ServeError::Setup(format!("console: listen on {}: {e}", c.listen)))?;
            let addr = listener
                .local_addr()
                .map_err(|e| ServeError::Setup(format!("console: {e}")))?;
            tracing::info!(%addr, "console listening");
            stats
                .lock()
                .map(|mut s| s.console_addr = Some(addr))
                .unwrap_or(());
            let mut stop = stop.clone();
            Some(tokio::spawn(async move {
                let shutdown = async move {
                    while !*stop.borrow() {
                        if stop.changed().await.is_err() {
                            break;
                        }
                    }
                };
                if let Err(e) = axum::serve(listener, app.router())
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::error!(error = %e, "console server stopped");
                }
            }))
        }
        None => None,
    };

    let mut replan = tokio::time::interval(Duration::from_secs_f64(cfg.replan_interval_s));
    replan.tick().await; // the first round after one interval of counts
    let mut retry = tokio::time::interval(Duration::from_secs(5));
    let count_finished = |c: &Centre, stats: &std::sync::Mutex<ServeStats>| {
        let (mut deployed, mut rolled_back) = (0, 0);
        for d in c.deployers.values() {
            for (_, _, outcome) in &d.finished {
                match outcome {
                    crate::deploy::Outcome::Deployed => deployed += 1,
                    crate::deploy::Outcome::RollbackUnconfirmed { .. } => {}
                    _ => rolled_back += 1,
                }
            }
        }
        let _ = stats.lock().map(|mut s| {
            s.deployed = deployed;
            s.rolled_back = rolled_back;
        });
    };
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            ev = eventloop.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    for r in &cfg.regions {
                        for leaf in ["detectors", "plan/ack", "status"] {
                            let _ = client.try_subscribe(format!("greenwave/v1/{}/+/{leaf}", r.id), QoS::AtLeastOnce);
                        }
                    }
                    tracing::info!("connected to the broker");
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let parts: Vec<&str> = p.topic.split('/').collect();
                    let (Some(region), Some(leaf)) = (parts.get(2), parts.get(4..)) else { continue };
                    let now = unix_now();
                    match leaf.join("/").as_str() {
                        "detectors" => {
                            let (Some(store), Some(net)) = (stores.get_mut(*region), networks.get(*region)) else { continue };
                            let checked = report_for_topic(&p.topic, net, &p.payload)
                                .map_err(crate::ingest::IngestError::Invalid)
                                .and_then(|r| store.ingest(&r).map(|i| (r, i)));
                            match checked {
                                Ok((_, crate::ingest::Ingested::Duplicate)) => stats.lock().map(|mut s| s.duplicates += 1).unwrap_or(()),
                                Ok((r, _)) => {
                                    let alarms: Vec<crate::ingest::Alarm> = store.alarms().into_iter().cloned().collect();
                                    let in_fault: Vec<&str> = alarms.iter().filter(|a| a.intersection == r.intersection).map(|a| a.detector.as_str()).collect();
                                    let mut pts = points_from_report(&r);
                                    if let Some(i) = net.intersection(&r.intersection) {
                                        pts.extend(points_from_measured(&r, &net.intersections[i.0], &in_fault));
                                    }
                                    for (a, raised) in store.take_alarm_changes() {
                                        if raised {
                                            tracing::warn!(region = %a.region, intersection = %a.intersection, detector = %a.detector, fault = ?a.fault, "detector fault: its counts are left out, its movements fall back on the other detectors and the history");
                                        } else {
                                            tracing::info!(region = %a.region, intersection = %a.intersection, detector = %a.detector, fault = ?a.fault, "detector fault cleared");
                                        }
                                        pts.extend(points_from_alarm(&a, raised, Ms(r.interval_end_ms)));
                                    }
                                    lock(&centre).on_report(now, &r, alarms);
                                    if let Err(e) = series.lock().await.add(&pts) {
                                        tracing::error!(error = %e, "series buffer");
                                    }
                                    stats.lock().map(|mut s| s.reports += 1).unwrap_or(());
                                }
                                Err(e) => {
                                    tracing::warn!(topic = %p.topic, error = %e, "report refused");
                                    stats.lock().map(|mut s| s.refused += 1).unwrap_or(());
                                }
                            }
                        }
                        "plan/ack" => {
                            let mut c = lock(&centre);
                            let out = c.on_ack(now, region, &p.payload);
                            count_finished(&c, &stats);
                            drop(c);
                            publish(&client, out);
                        }
                        "status" => {
                            lock(&centre).on_status(now, region, &p.payload);
                            if let Ok(st) = serde_json::from_slice::<intersections::messages::ControllerStatus>(&p.payload) {
                                if st.region == *region {
                                    if let Err(e) = series.lock().await.add(&points_from_status(&st)) {
                                        tracing::error!(error = %e, "series buffer");
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "broker connection lost; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            },
            _ = retry.tick() => {
                let mut c = lock(&centre);
                let out = c.tick(unix_now());
                count_finished(&c, &stats);
                drop(c);
                publish(&client, out);
            }
            _ = replan.tick() => {
                let now = unix_now();
                for r in &cfg.regions {
                    let (Some(net), Some(store)) = (networks.get(&r.id), stores.get(&r.id)) else { continue };
                    let in_force = lock(&centre).deployers.get(&r.id).map(|d| d.deployments_in_force().clone()).unwrap_or_default();
                    let decisions = planner(&r.id, net, store, &in_force, now);
                    let pts: Vec<crate::timeseries::Point> = decisions
                        .iter()
                        .flat_map(|d| {
                            let mut p = points_from_decision(&r.id, &d.group, now, !d.plans.is_empty(), &d.record);
                            p.extend(points_from_flows(&r.id, now, &d.flows));
                            p
                        })
                        .collect();
                    if let Err(e) = series.lock().await.add(&pts) {
                        tracing::error!(error = %e, "series buffer");
                    }
                    stats.lock().map(|mut s| s.decisions.extend(decisions.iter().map(|d| d.record.clone()))).unwrap_or(());
                    let mut c = lock(&centre);
                    let out = c.on_decisions(unix_now(), &r.id, decisions);
                    let sent = c.sent;
                    drop(c);
                    stats.lock().map(|mut s| s.deployments = sent).unwrap_or(());
                    publish(&client, out);
                }
                stats.lock().map(|mut s| s.rounds += 1).unwrap_or(());
            }
        }
    }
    let _ = client.try_disconnect();
    let _ = flusher.await;
    if let Some(c) = console {
        let _ = c.await;
    }
    Ok(())
}

/// The optimizer's planner for the service: counts of the last `window` from the store
/// (detectors in fault left out), flows estimated, Webster plans with green-wave offsets
/// computed for the whole region, and checked in simulation against the plans in force as
/// they run: the candidate coordinated and, when `operations` offers it, the candidate run
/// isolated actuated ([`crate::decide::validate_operations`]). Only the better of them, and
/// only if it passes, is deployed with its operation, one decision per coordination group (an
/// intersection in no group is a group of its own). The figures of every round are recorded,
/// deployed or not.
///
/// A region with modes chosen from its history (`operations.from_history`, with actuation
/// offered) is checked with one candidate only, run in those modes
/// ([`crate::decide::Operation::mixed`]); each group's deployment carries its own operation
/// (actuated for the groups chosen actuated, coordinated for the others), and every record
/// says `modes_from: "history"` with the `actuated` intersection ids.
///
/// The plans in force are checked as they run: isolated actuated where an intersection runs
/// an actuated centre plan (with the first such one's parameters), coordinated elsewhere.
pub fn optimizer_planner(
    window: Ms,
    params: crate::decide::ValidateParams,
    operations: OperationChoice,
) -> Planner {
    use crate::counts::CountRecord;
    use crate::decide::{check_demand, validate_operations, Operation as Check};
    use crate::estimate::{EstimateParams, EstimatedFlow, Estimator};
    use crate::webster::{plan_network, PlanParams};
    use intersections::{IntersectionIdx, Plan};
    Arc::new(
        move |region: &str, net: &Network, store: &CountStore, in_force: &InForce, now: Ms| {
            // The detectors with samples in the last window and not in fault (history stands
            // in for the others), found once; then the reports of those that ended in
            // (from, to].
            let usable: Vec<(usize, usize)> = net
                .intersections
                .iter()
                .enumerate()
                .flat_map(|(i, ix)| (0..ix.detectors.len()).map(move |d| (i, d)))
                .filter(|&(i, d)| {
                    let ix = &net.intersections[i];
                    store
                        .flow_veh_h(
                            region,
                            &ix.id,
                            &ix.detectors[d].id,
                            now - window,
                            now + Ms::from_s(3600),
                        )
                        .is_some()
                })
                .collect();
            let records_in = |from: Ms, to: Ms| {
                let mut records = Vec::new();
                for &(i, d) in &usable {
                    let ix = &net.intersections[i];
                    records.extend(
                        store
                            .samples(region, &ix.id, &ix.detectors[d].id)
                            .filter(|s| s.end > from && s.end <= to)
                            .map(|s| CountRecord {
                                intersection: IntersectionIdx(i),
                                detector: d,
                                start: s.start,
                                end: s.end,
                                count: s.count,
                                occupancy: Some(s.occupancy),
                            }),
                    );
                }
                records
            };
            let records = records_in(now - window, Ms(i64::MAX));
            if records.is_empty() {
                return Vec::new();
            }
            // The windows before, as far back as the check's warm-up replays
            // (`check_demand`) and the store has reports, go into one estimator, oldest first,
            // with the region's history as prior where it names one (the benchmark's loop:
            // the filter follows the history's profile). After each window, the forecast for
            // the middle of the window that follows it is what that window planned for; the
            // check replays them, and the last is what this round plans for.
            // The modes chosen from the region's history, with the actuated parameters.
            let modes = operations
                .actuated
                .as_ref()
                .and_then(|a| Some((operations.from_history.get(region)?, a)));
            let history = operations.priors.get(region);
            let mut windows = vec![records];
            for k in 1..(params.warmup.0 / window.0.max(1)).max(0) {
                let earlier = records_in(now - Ms(window.0 * (k + 1)), now - Ms(window.0 * k));
                if earlier.is_empty() {
                    break;
                }
                windows.push(earlier);
            }
            let mut estimator = Estimator::new(net, history, EstimateParams::default());
            let mut recent = Vec::with_capacity(windows.len());
            for (k, w) in windows.iter().enumerate().rev() {
                estimator.push(w);
                let end = now - Ms(window.0 * k as i64);
                recent.push(
                    estimator
                        .forecast(end + Ms(window.0 / 2))
                        .planning_flows(crate::estimate::LOWER_BOUND_BOOST),
                );
            }
            let flows = recent.last().expect("one window at least").clone();
            let estimate = estimator.estimate();
            let planned = &flows;
            let estimate = &estimate;
            let flows_at = |members: &dyn Fn(usize) -> bool| -> Vec<EstimatedFlow> {
                estimate
                    .intersections
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| members(*i))
                    .flat_map(|(i, ix)| {
                        ix.movements
                            .iter()
                            .enumerate()
                            .map(move |(m, e)| EstimatedFlow {
                                intersection: ix.intersection.clone(),
                                estimate: e.clone(),
                                planned_veh_h: planned[i][m],
                            })
                    })
                    .collect()
            };
            let record = |what: &str, extra: serde_json::Value| {
                let mut r = serde_json::json!({"region": region, "time_ms": now.0, "what": what, "detail": extra});
                if let Some((m, _)) = modes {
                    r["modes_from"] = "history".into();
                    r["actuated"] = serde_json::json!(m.actuated_ids);
                }
                r
            };
            // The planner the history chose (permissive left turns priced where it pays),
            // else the default.
            let planner = modes.map_or_else(PlanParams::default, |(m, _)| m.planner.clone());
            let planned = match plan_network(net, &flows, &planner) {
                Ok(p) => p,
                Err(e) => {
                    return vec![GroupDecision {
                        group: "*".into(),
                        plans: Vec::new(),
                        operation: Operation::Coordinated,
                        record: record("no plan", serde_json::json!(e.to_string())),
                        flows: flows_at(&|_| true),
                    }]
                }
            };
            // The plans in force: what the controllers acknowledged from the centre, else
            // their local time-of-day plans.
            let before: Vec<(IntersectionIdx, Plan)> = net
                .intersections
                .iter()
                .enumerate()
                .filter_map(|(i, ix)| {
                    let centre = in_force.get(&ix.id).and_then(|dep| {
                        intersections::plan::validate(
                            ix,
                            &net.safety,
                            &dep.plan,
                            &intersections::diag::FieldPath::root(),
                        )
                        .ok()
                    });
                    centre
                        .or_else(|| ix.scheduled_plan(now).cloned())
                        .map(|p| (IntersectionIdx(i), p))
                })
                .collect();
            let (demand, params) = match check_demand(net, &recent, window, &params) {
                Ok(d) => d,
                Err(p) => {
                    return vec![GroupDecision {
                        group: "*".into(),
                        plans: Vec::new(),
                        operation: Operation::Coordinated,
                        record: record("no demand", serde_json::json!(format!("{p:?}"))),
                        flows: flows_at(&|_| true),
                    }]
                }
            };
            // How the plans in force run (see above).
            let ops: Vec<Operation> = net
                .intersections
                .iter()
                .map(|ix| {
                    in_force
                        .get(&ix.id)
                        .map(|d| d.operation())
                        .unwrap_or_default()
                })
                .collect();
            // Intersections that run actuated now, with the parameters of the first of them.
            let at: Vec<IntersectionIdx> = (0..ops.len())
                .filter(|&i| matches!(ops[i], Operation::Actuated { .. }))
                .map(IntersectionIdx)
                .collect();
            let before = Check {
                plans: before,
                actuated: at.first().and_then(|i| ops[i.0].actuated_params()),
                actuated_only_at: Some(at),
            };
            let candidates = match modes {
                // The modes from the history, the only candidate.
                Some((m, a)) => {
                    let mut c = Check::mixed(
                        planned.plans.clone(),
                        m.actuated_at.clone(),
                        a.max_green_factor,
                    );
                    if c.actuated.is_some() {
                        c.actuated = Some(a.clone()); // the passage offered too
                    }
                    // The base plans stay on offer, in the same modes.
                    let base = Check {
                        plans: m.plans.clone(),
                        ..c.clone()
                    };
                    if base.plans.is_empty() {
                        vec![c]
                    } else {
                        vec![c, base]
                    }
                }
                None => {
                    let mut c = vec![Check::coordinated(planned.plans.clone())];
                    if let Some(a) = &operations.actuated {
                        c.push(Check {
                            plans: planned.plans.clone(),
                            actuated: Some(a.clone()),
                            actuated_only_at: None,
                        });
                    }
                    c
                }
            };
            let (decision, k) =
                match validate_operations(net, &demand, &before, &candidates, &params) {
                    Ok(dk) => dk,
                    Err(e) => {
                        return vec![GroupDecision {
                            group: "*".into(),
                            plans: Vec::new(),
                            operation: Operation::Coordinated,
                            record: record("check failed", serde_json::json!(e.to_string())),
                            flows: flows_at(&|_| true),
                        }]
                    }
                };
            let chosen = &candidates[k];
            let mut detail = serde_json::to_value(&decision).unwrap_or_default();
            // Which candidate the figures are about: the re-plan from counts, or the
            // history's base plans (the second candidate of a region with a history).
            let base = modes.is_some() && k == 1;
            detail["candidate"] = if base { "history" } else { "re-plan" }.into();
            if base {
                let r = detail["reason"].as_str().unwrap_or_default().to_string();
                detail["reason"] = format!("{r} (the history's base plans)").into();
            }
            if !decision.accepted {
                return vec![GroupDecision {
                    group: "*".into(),
                    plans: Vec::new(),
                    operation: Operation::Coordinated,
                    record: record("keep the plans in force", detail),
                    flows: flows_at(&|_| true),
                }];
            }
            // One deployment per coordination group; the rest each on their own. A group runs
            // as the chosen candidate runs its members (modes are chosen per whole group, so
            // its first planned member says).
            region_groups(net)
                .into_iter()
                .filter_map(|(g, members)| {
                    let plans: Vec<&(IntersectionIdx, Plan)> = chosen
                        .plans
                        .iter()
                        .filter(|(i, _)| members.contains(i))
                        .collect();
                    let first = plans.first()?.0;
                    // The group's own figures in the check: its members' approach delay both
                    // ways (the region's figures are the check's verdict; these say what the
                    // group itself gains or loses in it).
                    let mut detail = detail.clone();
                    let ids: Vec<&str> = members
                        .iter()
                        .map(|i| net.intersections[i.0].id.as_str())
                        .collect();
                    if let Some((b, a, imp)) =
                        crate::decide::ApproachDelays::of_group(&decision.intersection_delays, &ids)
                    {
                        detail["group"] = serde_json::json!({
                            "approach_delay_before_s": b,
                            "approach_delay_after_s": a,
                            "improvement": imp,
                        });
                    }
                    Some(GroupDecision {
                        group: g,
                        plans: plans
                            .iter()
                            .map(|(i, p)| {
                                (
                                    net.intersections[i.0].id.clone(),
                                    p.to_spec(&net.intersections[i.0]),
                                )
                            })
                            .collect(),
                        operation: Operation::from_actuated(chosen.actuated_at(first)),
                        record: record("deploy", detail),
                        flows: flows_at(&|i| members.contains(&IntersectionIdx(i))),
                    })
                })
                .collect()
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_report_must_match_its_topic_and_the_network() {
        let net = intersections::load::load_network(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../intersections/networks/single.toml"
        )))
        .unwrap();
        let topic = "greenwave/v1/r/C/detectors";
        let report = |region: &str, ix: &str, det: &str| {
            format!(
                r#"{{"version":1,"region":"{region}","intersection":"{ix}","seq":1,"interval_start_ms":0,"interval_end_ms":60000,"detectors":[{{"detector":"N_stop","count":3,"occupancy":0.1,"health":"ok"}},{{"detector":"{det}","count":3,"occupancy":0.1,"health":"ok"}}]}}"#
            )
        };
        let r =
            super::report_for_topic(topic, &net, report("r", "C", "S_stop").as_bytes()).unwrap();
        assert_eq!(r.detectors.len(), 2);
        for (payload, want) in [
            (
                report("other", "C", "S_stop"),
                "greenwave/v1/r/C/detectors: region: \"other\" is not the topic's \"r\"",
            ),
            (
                report("r", "ZZZ", "S_stop"),
                "intersection: \"ZZZ\" is not the topic's \"C\"",
            ),
            (
                report("r", "C", "GHOST"),
                "detectors[1].detector: intersection \"C\" has no detector \"GHOST\"",
            ),
            (
                report("r", "C", "S_stop").replace(
                    "\"count\":3,\"occupancy\":0.1,\"health\":\"ok\"}]",
                    "\"count\":-3,\"occupancy\":0.1,\"health\":\"ok\"}]",
                ),
                "detectors[1].count: not a detector report",
            ),
        ] {
            let e = super::report_for_topic(topic, &net, payload.as_bytes()).unwrap_err();
            assert!(e.contains(want) && e.starts_with(topic), "{e}");
        }
        let other = "greenwave/v1/r/ZZZ/detectors";
        let e = super::report_for_topic(other, &net, report("r", "ZZZ", "S_stop").as_bytes())
            .unwrap_err();
        assert!(e.contains("\"ZZZ\" is not in network \"single\""), "{e}");
    }

    #[test]
    fn the_example_config_is_valid_and_errors_are_located() {
        let p = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/serve.example.toml"));
        let cfg = super::load_config(p).unwrap();
        assert_eq!(cfg.regions[0].id, "demo");
        let dir = std::env::temp_dir().join(format!("gw-serve-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = std::fs::read_to_string(p).unwrap().replace(
            "replan_interval_s = 600",
            "replan_interval_s = 5\nreplan = 1",
        );
        std::fs::write(dir.join("serve.toml"), bad).unwrap();
        let e = super::load_config(&dir.join("serve.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("serve.toml:9: replan: unknown field"), "{e}");
        // The operations offered: actuated by default, its factor within the cabinets' limits.
        assert!(cfg.offer_actuated);
        assert_eq!(cfg.operations(), super::OperationChoice::default());
        let bad = std::fs::read_to_string(p).unwrap().replace(
            "actuated_max_green_factor = 2.5",
            "actuated_max_green_factor = 4.0",
        );
        std::fs::write(dir.join("serve.toml"), bad).unwrap();
        let e = super::load_config(&dir.join("serve.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("actuated_max_green_factor: 4 is outside 1 to 3"),
            "{e}"
        );
        // The example with `from` replaced by `to`, its network found from the temporary folder.
        let edited = |from: &str, to: &str| {
            std::fs::read_to_string(p)
                .unwrap()
                .replace(from, to)
                .replace(
                    "network = \"../",
                    concat!("network = \"", env!("CARGO_MANIFEST_DIR"), "/../"),
                )
        };
        // The check's horizon: the loop's hour by default, the configured one when set, and
        // out of range a located error.
        assert_eq!(
            cfg.check(),
            crate::adaptive::AdaptiveParams::default().validate.unwrap()
        );
        assert_eq!(cfg.check().horizon, intersections::Ms::from_s(3600));
        for (h, ok) in [("1800", true), ("300", false), ("nan", false)] {
            let text = edited(
                "# check_horizon_s = 3600",
                &format!("check_horizon_s = {h}"),
            );
            std::fs::write(dir.join("serve.toml"), text).unwrap();
            let got = super::load_config(&dir.join("serve.toml"));
            if ok {
                assert_eq!(
                    got.unwrap().check().horizon,
                    intersections::Ms::from_s(1800)
                );
            } else {
                let e = got.unwrap_err().to_string();
                assert!(
                    e.contains("check_horizon_s:") && e.contains("is outside 600 to 7200"),
                    "{e}"
                );
            }
        }
        // Stopping early: on by default, off when asked.
        assert!(cfg.check().early_reject);
        let text = edited("# check_early_reject = true", "check_early_reject = false");
        std::fs::write(dir.join("serve.toml"), text).unwrap();
        let got = super::load_config(&dir.join("serve.toml")).unwrap().check();
        assert!(!got.early_reject && got.horizon == intersections::Ms::from_s(3600));
        let text = edited(
            "# check_early_reject = true",
            "check_early_reject = \"yes\"",
        );
        std::fs::write(dir.join("serve.toml"), text).unwrap();
        let e = super::load_config(&dir.join("serve.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("check_early_reject") && e.contains("expected a boolean"),
            "{e}"
        );
        // A database URL without its scheme is a located error, not a panic at start-up.
        let influx = |url: &str| {
            edited(
                "# [influx]\n# url = \"http://127.0.0.1:8086\"\n# org = \"greenwave\"\n# bucket = \"greenwave\"\n# token_file",
                &format!("[influx]\nurl = \"{url}\"\norg = \"greenwave\"\nbucket = \"greenwave\"\ntoken_file"),
            )
        };
        std::fs::write(dir.join("serve.toml"), influx("http://127.0.0.1:8086")).unwrap();
        assert!(super::load_config(&dir.join("serve.toml"))
            .unwrap()
            .influx
            .is_some());
        std::fs::write(dir.join("serve.toml"), influx("127.0.0.1:8086")).unwrap();
        let e = super::load_config(&dir.join("serve.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("serve.toml:") && e.contains("influx.url:"),
            "{e}"
        );
        // The threshold and the seeds: the loop's by default, the configured ones when set,
        // and out of range a located error.
        assert_eq!(cfg.check().threshold, 0.03);
        assert_eq!(cfg.check().seeds, vec![1, 2, 3]);
        let text = edited("# check_threshold_pct = 3", "check_threshold_pct = 5")
            .replace("# check_seeds = 3", "check_seeds = 5");
        std::fs::write(dir.join("serve.toml"), text).unwrap();
        let got = super::load_config(&dir.join("serve.toml")).unwrap().check();
        assert!((got.threshold - 0.05).abs() < 1e-12 && got.seeds == vec![1, 2, 3, 4, 5]);
        for (key, bad, want) in [
            (
                "check_threshold_pct = 3",
                "check_threshold_pct = -50",
                "check_threshold_pct: -50 is not a percentage",
            ),
            (
                "check_threshold_pct = 3",
                "check_threshold_pct = 100",
                "check_threshold_pct: 100 is not a percentage",
            ),
            (
                "check_seeds = 3",
                "check_seeds = 0",
                "check_seeds: 0 seeds: a check runs 1 to 20",
            ),
            (
                "check_seeds = 3",
                "check_seeds = 21",
                "check_seeds: 21 seeds",
            ),
        ] {
            let text = edited(&format!("# {key}"), bad);
            std::fs::write(dir.join("serve.toml"), text).unwrap();
            let e = super::load_config(&dir.join("serve.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want) && e.contains("serve.toml:"), "{bad}: {e}");
        }
        let off = edited("offer_actuated = true", "offer_actuated = false");
        std::fs::write(dir.join("serve.toml"), off).unwrap();
        let cfg = super::load_config(&dir.join("serve.toml")).unwrap();
        assert_eq!(cfg.operations().actuated, None);

        // The console table, uncommented, with an operators file; its errors are located too.
        let example = std::fs::read_to_string(p).unwrap();
        let console = |extra: &str| {
            let text = example
                .replace("# [console]", "[console]")
                .replace("# listen = ", "listen = ")
                .replace(
                    "# operators_file = \"/etc/greenwave/operators\"",
                    &format!("operators_file = \"operators\"{extra}"),
                )
                .replace(
                    "network = \"../",
                    concat!("network = \"", env!("CARGO_MANIFEST_DIR"), "/../"),
                );
            std::fs::write(dir.join("serve.toml"), text).unwrap();
            super::load_config(&dir.join("serve.toml"))
        };
        std::fs::write(dir.join("operators"), "li 0123456789abcdef0123\n").unwrap();
        let cfg = console("").unwrap();
        let c = cfg.console.unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.stale_after_s, 90.0);
        assert_eq!(c.command_validity_s, 60.0);
        assert_eq!(cfg.regions[0].approve, crate::console::Approval::Manual);
        let e = console("\ntheme = \"dark\"").unwrap_err().to_string();
        assert!(e.contains("theme: unknown field"), "{e}");
        std::fs::write(dir.join("operators"), "li short\n").unwrap();
        let e = console("").unwrap_err().to_string();
        assert!(
            e.contains("console.operators_file") && e.contains("operators:1: the token of li"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A region's `history` is relative to the config file, checked against the region's
    /// network at load, and a bad one is an error located in the config and in the file.
    #[test]
    fn a_region_history_is_checked_at_load_and_errors_are_located() {
        let dir = std::env::temp_dir().join(format!("gw-serve-hist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let networks = concat!(env!("CARGO_MANIFEST_DIR"), "/../intersections/networks");
        let config = |history: &str| {
            let text = format!(
                "data_dir = \"centre\"\n\
                 [broker]\nhost = \"127.0.0.1\"\nport = 1883\n\
                 [signing]\nkey_id = \"c\"\nsecret_key_file = \"key\"\n\
                 [[regions]]\nid = \"r\"\nnetwork = \"{networks}/single.toml\"\n\
                 history = \"{history}\"\n"
            );
            std::fs::write(dir.join("serve.toml"), text).unwrap();
            super::load_config(&dir.join("serve.toml"))
        };
        // Relative to the config file, like the network.
        let good = std::fs::read_to_string(format!("{networks}/single.demand.toml")).unwrap();
        std::fs::write(dir.join("single.demand.toml"), &good).unwrap();
        let cfg = config("single.demand.toml").unwrap();
        assert_eq!(
            cfg.regions[0].history.as_deref(),
            Some(dir.join("single.demand.toml").as_path())
        );
        // Missing.
        let e = config("nowhere.demand.toml").unwrap_err().to_string();
        assert!(
            e.contains("serve.toml:11: regions[0].history: ")
                && e.contains("nowhere.demand.toml does not exist"),
            "{e}"
        );
        // Malformed: the config line, then the file's own located problems.
        std::fs::write(
            dir.join("bad.demand.toml"),
            good.replace("flows_veh_h = [740,", "flows_veh_h = [-740,"),
        )
        .unwrap();
        let e = config("bad.demand.toml").unwrap_err().to_string();
        assert!(
            e.contains("serve.toml:11: regions[0].history: ")
                && e.contains("bad.demand.toml has errors:")
                && e.contains("bad.demand.toml:15: entries[0].flows_veh_h"),
            "{e}"
        );
        // Another network's history: its links are not this network's.
        let e = config(&format!("{networks}/arterial.demand.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("serve.toml:11: regions[0].history: ")
                && e.contains("arterial.demand.toml:"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
