//! `greenwave`: the user-facing command line. Every command is thin assembly; the logic lives
//! in the crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use intersections::load::{self, Loaded};

mod demo;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files, json } => check(&files, json),
        Command::Demo { dir } => demo::run(&dir),
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
