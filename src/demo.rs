//! `greenwave demo`: the most complete thing Greenwave does so far, on shipped data, with no
//! service to install. Today: check every shipped file, show each intersection's timing, and
//! simulate every shipped network over its demand under its fixed time-of-day plans and the
//! actuated and max-pressure policies, then re-plan each network from the counts its simulated
//! detectors report and show the plans in force against the candidate, before and after.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use intersections::load::{self, Loaded};
use intersections::spec::GroupKind;

pub fn run(dir: &Path) -> ExitCode {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(e) => {
            eprintln!(
                "{}: cannot read the folder of shipped networks: {e}",
                dir.display()
            );
            return ExitCode::from(1);
        }
    };
    files.sort();
    if files.is_empty() {
        eprintln!("{}: no .toml files", dir.display());
        return ExitCode::from(1);
    }
    let mut ok = true;
    println!(
        "== Checking {} shipped files in {}",
        files.len(),
        dir.display()
    );
    for f in &files {
        match load::load_any(f) {
            Ok(Loaded::Network(net)) => {
                println!("\n{}: network {:?} is valid", f.display(), net.name);
                for ix in &net.intersections {
                    if ix.plans.is_empty() {
                        println!("  {:<10} priority junction", ix.id);
                        continue;
                    }
                    let veh = ix
                        .groups
                        .iter()
                        .filter(|g| g.kind == GroupKind::Vehicle)
                        .count();
                    let conflicts: usize =
                        ix.conflicts.iter().flatten().filter(|c| **c).count() / 2;
                    let plans: Vec<String> = ix
                        .plans
                        .iter()
                        .map(|p| {
                            let inter: i64 = p.stages.iter().map(|s| s.interstage.0).sum();
                            format!(
                                "{} ({} cycle, {} stages, {:.1} s lost to interstages)",
                                p.id,
                                p.cycle,
                                p.stages.len(),
                                inter as f64 / 1000.0
                            )
                        })
                        .collect();
                    println!(
                        "  {:<10} {} vehicle + {} pedestrian groups, {} conflicting pairs, {} detectors; plans: {}",
                        ix.id,
                        veh,
                        ix.groups.len() - veh,
                        conflicts,
                        ix.detectors.len(),
                        plans.join("; ")
                    );
                }
            }
            Ok(Loaded::Demand { network, demand }) => {
                let veh: f64 = demand
                    .entries
                    .iter()
                    .map(|e| {
                        e.flows_veh_h.iter().sum::<f64>() * demand.slice.as_secs_f64() / 3600.0
                    })
                    .sum();
                println!(
                    "\n{}: demand for {:?} is valid: {} entries over {}, about {veh:.0} vehicles",
                    f.display(),
                    network.name,
                    demand.entries.len(),
                    demand.duration()
                );
            }
            Ok(Loaded::Plans { network, plans }) => {
                println!(
                    "\n{}: {} plans for {:?} are valid",
                    f.display(),
                    plans.plans.len(),
                    network.name
                );
            }
            Err(d) => {
                ok = false;
                eprintln!("{d}");
            }
        }
    }
    if !ok {
        return ExitCode::from(1);
    }
    println!("\nAll shipped files are valid.");
    match simulate_all(&files).and_then(|()| replan_all(&files)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(1)
        }
    }
}

/// Simulate every shipped network that has a demand file, under each control, seed 1.
fn simulate_all(files: &[PathBuf]) -> anyhow::Result<()> {
    use simulator::{Control, ControlKind, Scenario, SimConfig};
    println!("\n== Simulating each shipped network over its demand (seed 1, step 1 s)");
    println!(
        "{:<10} {:<12} {:>9} {:>10} {:>11} {:>7} {:>6} {:>9}",
        "network", "control", "completed", "unfinished", "delay s/veh", "stops", "TTI", "speed m/s"
    );
    for f in files {
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if stem.ends_with(".demand") {
            continue;
        }
        let demand_file = f.with_file_name(format!("{stem}.demand.toml"));
        if !demand_file.exists() {
            continue;
        }
        let net = load::load_network(f).map_err(|d| anyhow::anyhow!("{d}"))?;
        let demand =
            load::load_demand_for(&demand_file, &net).map_err(|d| anyhow::anyhow!("{d}"))?;
        let duration = demand.duration();
        let scenario = Scenario::new(net, demand, SimConfig::default())?;
        for kind in [
            ControlKind::Fixed,
            ControlKind::Actuated,
            ControlKind::MaxPressure,
        ] {
            let m = scenario.run(&Control::of_kind(kind), 1, duration)?;
            println!(
                "{:<10} {:<12} {:>9} {:>10} {:>11.1} {:>7.2} {:>6.2} {:>9.2}",
                stem,
                m.control,
                m.completed,
                m.unfinished,
                m.mean_delay_s,
                m.mean_stops,
                m.travel_time_index,
                m.mean_speed_mps
            );
        }
    }
    Ok(())
}

/// Re-plan every shipped network from its simulated detector counts and show the figures of
/// the plans in force against the candidate (3 seeds, 1 h after a warm-up, the estimated
/// demand), and whether the candidate passed the check that guards deployment.
fn replan_all(files: &[PathBuf]) -> anyhow::Result<()> {
    println!(
        "\n== Re-planning each network from the counts of its simulated detectors (Webster cycles"
    );
    println!(
        "   and splits, green-wave offsets), checked in simulation against the plans in force"
    );
    println!(
        "{:<10} {:>13} {:>13} {:>8} {:>9} {:>9} {:>9}  decision",
        "network", "delay before", "delay after", "change", "TTI bef.", "TTI aft.", "speed +%"
    );
    for f in files {
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if stem.ends_with(".demand") || !f.with_file_name(format!("{stem}.demand.toml")).exists() {
            continue;
        }
        let r = crate::plan::replan(
            f,
            None,
            None,
            &crate::plan::Check::default(),
            &optimizer::webster::PlanParams::default(),
        )?;
        let (b, a) = (&r.decision.before, &r.decision.after);
        let pct = |x: f64, y: f64| if x != 0.0 { (y / x - 1.0) * 100.0 } else { 0.0 };
        println!(
            "{:<10} {:>13.1} {:>13.1} {:>+7.1}% {:>9.3} {:>9.3} {:>+8.1}%  {}",
            stem,
            b.mean_delay_s,
            a.mean_delay_s,
            pct(b.mean_delay_s, a.mean_delay_s),
            b.travel_time_index,
            a.travel_time_index,
            pct(b.mean_speed_mps, a.mean_speed_mps),
            match (r.decision.accepted, r.decision.stopped_early) {
                (true, _) => "deploy".to_string(),
                (false, false) => "keep the plans in force".to_string(),
                (false, true) => format!(
                    "keep the plans in force (clear on the first {} of {} seeds)",
                    r.decision.seeds.len(),
                    r.vp.seeds.len()
                ),
            }
        );
    }
    println!("\n(`greenwave plan --network FILE --out FILE` writes a candidate and explains it;");
    println!(" `greenwave bench control` compares the controls over the whole two hours.)");
    Ok(())
}
