//! Greenwave beside the real SUMO, shared by the tests that run SUMO (`tests/with_sumo.rs`) and
//! the `vs_sumo` bench: finding SUMO (and refusing to go on without it under CI, where
//! `.ci/run` installs it), one case exported and run in SUMO, and the agreement of the two
//! simulators over seeds with issue 5's marks (throughput within 5%, delay within 15%).

#![allow(dead_code)] // each includer uses its part

use std::path::{Path, PathBuf};

use intersections::demand::Demand;
use intersections::{Ms, Network};
use simulator::{Control, Scenario, SimConfig};
use sumo::tools::{self, SumoRun};
use sumo::ExportOptions;

/// SUMO's two programs the cases need.
pub struct Bins {
    pub netconvert: PathBuf,
    pub sumo: PathBuf,
}

/// `netconvert` and `sumo` through `SUMO_HOME`, `PATH` or `.venv-sumo` (PyPI's `eclipse-sumo`).
pub fn find() -> Option<Bins> {
    Some(Bins {
        netconvert: tools::find("netconvert")?,
        sumo: tools::find("sumo")?,
    })
}

/// How to install what [`find`] looks for.
pub const INSTALL: &str =
    "python3 -m venv .venv-sumo && .venv-sumo/bin/pip install eclipse-sumo==1.28.0";

/// SUMO for the test `test`: found, or `None` with a note on stderr when it is not installed.
/// Under CI (`CI` set, as `.ci/run` runs the tests) a missing SUMO fails the test instead:
/// `.ci/run` installs it, so its absence there is a broken set-up, not a reason to skip.
pub fn for_test(test: &str) -> Option<Bins> {
    let found = find();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: SUMO (netconvert and sumo) not found through SUMO_HOME, PATH or .venv-sumo, \
             and CI is set: .ci/run installs it with `{INSTALL}`"
        );
        eprintln!("{test}: skipped, SUMO is not installed (install it with `{INSTALL}`)");
    }
    found
}

/// Export `net` (its plans in force as the programs, `demand` as the very vehicles Greenwave's
/// simulator generates for `seed`) into `dir`, build it with `netconvert`, and run it in SUMO
/// for `duration` with the seed. `crossings`: the export's `--crossings`.
pub fn run_sumo(
    dir: &Path,
    net: &Network,
    demand: &Demand,
    duration: Ms,
    seed: u64,
    crossings: bool,
    bins: &Bins,
) -> Result<SumoRun, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let opts = ExportOptions {
        vehicles_of_seed: Some(seed),
        crossings,
        ..ExportOptions::default()
    };
    let files = sumo::export(net, &[], Some(demand), &opts).map_err(|e| e.to_string())?;
    for (f, text) in files.files() {
        let path = dir.join(f);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let net_xml =
        tools::netconvert(&bins.netconvert, dir, &files.name).map_err(|e| e.to_string())?;
    let rou = dir.join(format!("{}.rou.xml", files.name));
    let add = dir.join(format!("{}.tls.add.xml", files.name));
    tools::run_sumo(
        &bins.sumo,
        &net_xml,
        &rou,
        &[&add],
        duration.as_secs_f64(),
        seed,
    )
    .map_err(|e| e.to_string())
}

/// Issue 5's marks: throughput within this many percent of SUMO's ...
pub const THROUGHPUT_MARK_PCT: f64 = 5.0;
/// ... and mean delay within this many percent of SUMO's mean time loss.
pub const DELAY_MARK_PCT: f64 = 15.0;

/// Both simulators on the same plans and vehicles, means over seeds.
#[derive(Clone, Debug)]
pub struct Agreement {
    pub seeds: u64,
    /// Mean completed vehicles per seed: ours, SUMO's (`arrived`).
    pub completed: (f64, f64),
    /// Mean delay over completed vehicles: ours (travel time minus free-flow time), SUMO's
    /// `timeLoss`.
    pub delay_s: (f64, f64),
    /// SUMO's teleports, summed over the seeds.
    pub teleports: u64,
}

impl Agreement {
    /// Our throughput against SUMO's, percent.
    pub fn throughput_diff_pct(&self) -> f64 {
        (self.completed.0 - self.completed.1) / self.completed.1 * 100.0
    }

    /// Our delay against SUMO's time loss, percent.
    pub fn delay_diff_pct(&self) -> f64 {
        (self.delay_s.0 - self.delay_s.1) / self.delay_s.1 * 100.0
    }

    pub fn throughput_ok(&self) -> bool {
        self.throughput_diff_pct().abs() <= THROUGHPUT_MARK_PCT
    }

    pub fn delay_ok(&self) -> bool {
        self.delay_diff_pct().abs() <= DELAY_MARK_PCT
    }
}

/// Completed vehicles and their mean delay in Greenwave's simulator: `net`'s plans in force,
/// fixed time, `seed`, up to `duration`.
pub fn run_ours(
    net: &Network,
    demand: &Demand,
    duration: Ms,
    seed: u64,
    cfg: &SimConfig,
) -> (u64, f64) {
    let sc = Scenario::new(net.clone(), demand.clone(), cfg.clone()).expect("scenario");
    let mut sim = sc.simulation(&Control::fixed(), seed).expect("simulation");
    sim.run_until(duration);
    let m = sim.metrics();
    (m.completed, m.mean_delay_s)
}

/// The agreement over seeds `1..=seeds` (the files in `dir`, each seed's over the last's).
#[allow(clippy::too_many_arguments)]
pub fn agree(
    dir: &Path,
    net: &Network,
    demand: &Demand,
    duration: Ms,
    seeds: u64,
    cfg: &SimConfig,
    crossings: bool,
    bins: &Bins,
) -> Result<Agreement, String> {
    let mut a = Agreement {
        seeds,
        completed: (0.0, 0.0),
        delay_s: (0.0, 0.0),
        teleports: 0,
    };
    for seed in 1..=seeds {
        let (done, delay) = run_ours(net, demand, duration, seed, cfg);
        let s = run_sumo(dir, net, demand, duration, seed, crossings, bins)?;
        let tl = s
            .mean_time_loss_s
            .ok_or_else(|| format!("seed {seed}: SUMO printed no time loss"))?;
        a.completed.0 += done as f64;
        a.completed.1 += s.arrived.unwrap_or(0) as f64;
        a.delay_s.0 += delay;
        a.delay_s.1 += tl;
        a.teleports += s.teleports;
    }
    let n = seeds.max(1) as f64;
    a.completed = (a.completed.0 / n, a.completed.1 / n);
    a.delay_s = (a.delay_s.0 / n, a.delay_s.1 / n);
    Ok(a)
}
