//! `greenwave`: the user-facing command line. Every command is thin assembly; the logic lives
//! in the crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use intersections::load::{self, Loaded};

mod demo;
mod simulate;

#[derive(Parser)]
#[command(name = "greenwave", version, about = "Intelligent traffic-signal control", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate network, demand and plan files. Prints every error as `file:line: field: what`
    /// and exits 1 if any file has one.
    Check {
        /// Files to check; each says what it is in its `kind` field.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print a JSON summary instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The main job on shipped data: check every shipped network, demand and plan, and show
    /// what each intersection runs.
    Demo {
        /// Folder with the shipped networks.
        #[arg(long, default_value = "intersections/networks")]
        dir: PathBuf,
    },
    /// Run the microscopic simulator on a network and demand and print its metrics.
    Simulate {
        /// Network file.
        #[arg(long)]
        network: PathBuf,
        /// Demand file; defaults to `<network stem>.demand.toml` next to the network.
        #[arg(long)]
        demand: Option<PathBuf>,
        /// Plan file whose plans replace the scheduled plans (fixed control runs them;
        /// actuated takes stage sequence and maximum greens from them).
        #[arg(long)]
        plan: Option<PathBuf>,
        /// How the signals are driven.
        #[arg(long, value_enum, default_value = "fixed")]
        control: simulate::ControlArg,
        /// Simulated time in seconds; defaults to the demand's duration.
        #[arg(long)]
        duration: Option<f64>,
        /// Simulation step in seconds.
        #[arg(long, default_value_t = 1.0)]
        step: f64,
        /// Seed of the run's random numbers.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files, json } => check(&files, json),
        Command::Demo { dir } => demo::run(&dir),
        Command::Simulate {
            network,
            demand,
            plan,
            control,
            duration,
            step,
            seed,
            json,
        } => match simulate::run(simulate::Args {
            network,
            demand,
            plan,
            control,
            duration_s: duration,
            step_s: step,
            seed,
            json,
        }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

fn check(files: &[PathBuf], json: bool) -> ExitCode {
    let mut ok = true;
    let mut summary = Vec::new();
    for f in files {
        match load::load_any(f) {
            Ok(loaded) => {
                let what = describe(&loaded);
                if !json {
                    println!("{}: ok: {what}", f.display());
                }
                summary.push(serde_json::json!({"file": f.display().to_string(), "ok": true, "summary": what}));
            }
            Err(diags) => {
                ok = false;
                for d in &diags.0 {
                    eprintln!("{d}");
                }
                summary.push(serde_json::json!({
                    "file": f.display().to_string(),
                    "ok": false,
                    "errors": diags.0.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                }));
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn describe(l: &Loaded) -> String {
    match l {
        Loaded::Network(n) => {
            let plans: usize = n.intersections.iter().map(|i| i.plans.len()).sum();
            let groups: usize = n.intersections.iter().map(|i| i.groups.len()).sum();
            let dets: usize = n.intersections.iter().map(|i| i.detectors.len()).sum();
            format!(
                "network {:?}: {} intersections, {} links, {} signal groups, {} detectors, {} plans, {} coordination groups",
                n.name,
                n.intersections.len(),
                n.links.len(),
                groups,
                dets,
                plans,
                n.coordination_groups.len()
            )
        }
        Loaded::Demand { network, demand } => {
            let veh: f64 = demand
                .entries
                .iter()
                .map(|e| e.flows_veh_h.iter().sum::<f64>() * demand.slice.as_secs_f64() / 3600.0)
                .sum();
            format!(
                "demand for {:?}: {} entries, {} slices of {}, about {:.0} vehicles",
                network.name,
                demand.entries.len(),
                demand.slices,
                demand.slice,
                veh
            )
        }
        Loaded::Plans { network, plans } => {
            format!("{} plans for network {:?}", plans.plans.len(), network.name)
        }
    }
}
