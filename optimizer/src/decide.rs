//! Validation before deployment: the candidate plans and the plans in force each run in the
//! simulator over the same horizon, with the same estimated demand and the same seeds (common
//! random numbers: the same vehicles on the same routes). The candidate is accepted only if
//! the mean delay improves by more than the threshold (default 3%). Every decision, accepted
//! or not, is a [`Decision`] with its before and after figures.
//!
//! Both run from an empty network for a warm-up (not measured) and then the horizon. The
//! candidate runs as its plans, from their first cycle: the controller's transition into it
//! (a few cycles, see `intersections::transition`) is not part of this check yet.

use intersections::demand::Demand;
use intersections::{IntersectionIdx, Ms, Network, Plan};
use serde::Serialize;
use simulator::{Control, RunMetrics, Scenario, SimConfig, SimError};

/// Settings of the check.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidateParams {
    /// Least relative improvement of mean delay to accept (0.03 = 3%).
    pub threshold: f64,
    pub seeds: Vec<u64>,
    /// Measured time.
    pub horizon: Ms,
    /// Time run first to fill the network (not measured).
    pub warmup: Ms,
}

impl Default for ValidateParams {
    fn default() -> Self {
        ValidateParams {
            threshold: 0.03,
            seeds: vec![1, 2, 3],
            horizon: Ms::from_s(3600),
            warmup: Ms::from_s(300),
        }
    }
}

/// Figures of a set of runs, averaged over seeds (the simulator's one definition).
pub use simulator::SeedSummary as Figures;

/// The record of one decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub accepted: bool,
    /// Relative improvement of mean delay, (before - after) / before.
    pub improvement: f64,
    pub threshold: f64,
    pub before: Figures,
    pub after: Figures,
    pub seeds: Vec<u64>,
    pub horizon_s: f64,
    pub warmup_s: f64,
    pub reason: String,
}

fn runs(
    scenario: &Scenario,
    plans: &[(IntersectionIdx, Plan)],
    p: &ValidateParams,
) -> Result<Vec<RunMetrics>, SimError> {
    let control = Control::with_plans(plans.to_vec());
    let mut out = Vec::new();
    for &seed in &p.seeds {
        let mut sim = scenario.simulation(&control, seed)?;
        sim.run_until(p.warmup);
        sim.reset_metrics();
        sim.run_until(p.warmup + p.horizon);
        out.push(sim.metrics());
    }
    Ok(out)
}

/// Simulate the plans in force and the candidate with `demand` and decide.
pub fn validate_candidate(
    net: &Network,
    demand: &Demand,
    in_force: &[(IntersectionIdx, Plan)],
    candidate: &[(IntersectionIdx, Plan)],
    p: &ValidateParams,
) -> Result<Decision, SimError> {
    let scenario = Scenario::new(net.clone(), demand.clone(), SimConfig::default())?;
    let (before, after) = std::thread::scope(|s| {
        let b = s.spawn(|| runs(&scenario, in_force, p));
        let a = runs(&scenario, candidate, p);
        (
            b.join()
                .unwrap_or_else(|_| Err(SimError::Config("a run panicked".into()))),
            a,
        )
    });
    let (before, after) = (Figures::of(&before?), Figures::of(&after?));
    let improvement = if before.mean_delay_s > 0.0 {
        (before.mean_delay_s - after.mean_delay_s) / before.mean_delay_s
    } else {
        0.0
    };
    let gridlock = after.gridlocks > before.gridlocks;
    let accepted = improvement > p.threshold && !gridlock;
    let reason = if gridlock {
        format!(
            "the candidate gridlocked in {} of {} runs",
            after.gridlocks,
            p.seeds.len()
        )
    } else if accepted {
        format!(
            "mean delay {:.1} s -> {:.1} s ({:+.1}%), better than the {:.1}% threshold",
            before.mean_delay_s,
            after.mean_delay_s,
            -improvement * 100.0,
            p.threshold * 100.0
        )
    } else {
        format!(
            "mean delay {:.1} s -> {:.1} s ({:+.1}%), not better than the {:.1}% threshold: the plans in force stay",
            before.mean_delay_s,
            after.mean_delay_s,
            -improvement * 100.0,
            p.threshold * 100.0
        )
    };
    Ok(Decision {
        accepted,
        improvement,
        threshold: p.threshold,
        before,
        after,
        seeds: p.seeds.clone(),
        horizon_s: p.horizon.as_secs_f64(),
        warmup_s: p.warmup.as_secs_f64(),
        reason,
    })
}
