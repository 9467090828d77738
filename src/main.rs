//! `greenwave`: the user-facing command line. Every command is thin assembly; the logic lives
//! in the crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use intersections::load::{self, Loaded};
use optimizer::offsets::OffsetChoice;
use optimizer::webster::{GapAcceptance, PlanParams};

mod bench;
mod demo;
mod plan;
mod serve;
mod simulate;
mod sumo;

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
    /// The central service: detector counts in over MQTT, plans re-computed each round and
    /// checked in simulation, deployed signed to the controllers, series to InfluxDB or the
    /// data directory. Runs until interrupted.
    Serve {
        /// The service's configuration (see optimizer/serve.example.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// The main job on shipped data: check every shipped network, demand and plan file, show
    /// what each intersection runs, simulate every network under fixed, actuated and
    /// max-pressure control, and re-plan each from its simulated counts with before/after
    /// figures.
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
    /// Offline optimization: estimate flows per movement from detector counts, compute
    /// coordinated Webster plans, check them in the simulator against the plans in force, and
    /// write a plan file (plus `<out>.decision.json`).
    Plan {
        /// Network file.
        #[arg(long)]
        network: PathBuf,
        /// Detector counts: DetectorReport JSON (one per line or an array) or CSV
        /// `detector,interval_start_s,interval_end_s,count[,occupancy][,intersection]`.
        /// A record given twice counts once; the same detector and interval with another
        /// count, or overlapping intervals of one detector, are refused.
        /// Without it, counts come from simulating the network's demand file.
        #[arg(long)]
        counts: Option<PathBuf>,
        /// Plan file to write (`kind = "plans"`).
        #[arg(long)]
        out: PathBuf,
        /// Demand file (history: turning ratios and flows where no detector counts);
        /// defaults to `<network stem>.demand.toml` next to the network.
        #[arg(long)]
        demand: Option<PathBuf>,
        /// Print one JSON object instead of tables.
        #[arg(long)]
        json: bool,
        /// Seeds 1..=N of the validation runs (N from 1 to 20).
        #[arg(long, default_value_t = plan::Check::default().seeds)]
        seeds: u64,
        /// Measured simulated time of each validation run, seconds.
        #[arg(long, default_value_t = plan::Check::default().horizon_s)]
        horizon: f64,
        /// Least improvement of mean delay to accept the candidate, percent (0 to under 100).
        #[arg(long, default_value_t = plan::Check::default().threshold_pct)]
        threshold: f64,
        /// Run every seed of the check even when its first two reject the candidate beyond
        /// doubt (see docs/optimizer.md, "Stopping early").
        #[arg(long)]
        no_early_reject: bool,
        /// How coordination groups get their offsets (default: the planner's default).
        #[arg(long, value_enum)]
        offsets: Option<OffsetsArg>,
        /// Let a lightly loaded member of a coordination group run half the group's cycle
        /// (double cycling) when its own Webster cycle and minimum greens fit in it.
        #[arg(long)]
        double_cycling: bool,
        /// Price permissive left turns by gap acceptance against the opposing stream in the
        /// flow ratios (off by default; see docs/optimizer.md).
        #[arg(long)]
        price_permissive_lefts: bool,
    },
    /// Benchmarks: `control` (Greenwave's adaptive control against fixed Webster plans,
    /// actuated and max-pressure on the shipped networks) and `planning` (time to plan and
    /// validate generated grids).
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Interoperate with Eclipse SUMO.
    #[command(subcommand)]
    Sumo(SumoCommand),
}

#[derive(Subcommand)]
enum SumoCommand {
    /// Write a network, its plans and its demand as SUMO files (plain XML nodes, edges,
    /// connections and signal programs, an additional file with the programs, routes), and
    /// build the `.net.xml` with netconvert when it is installed. Pedestrian groups are not
    /// exported.
    Export {
        /// Network file.
        #[arg(long)]
        network: PathBuf,
        /// Plan file whose plans replace the plans in force at the start.
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Demand file; defaults to `<network stem>.demand.toml` next to the network.
        #[arg(long)]
        demand: Option<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Path of netconvert; defaults to SUMO_HOME/bin, PATH, then .venv-sumo/bin.
        #[arg(long)]
        netconvert: Option<PathBuf>,
        /// Write the plain XML only.
        #[arg(long)]
        no_netconvert: bool,
        /// Write explicit vehicles instead of flows: those Greenwave's simulator generates
        /// with this seed (same arrival times, entries and routes).
        #[arg(long)]
        seed: Option<u64>,
        /// The SUMO network this network was imported from: also write
        /// `<name>.onto.add.xml`, the plans as programs of that network's own traffic lights
        /// (its linkIndex numbering; lights Greenwave does not signalise keep SUMO's program),
        /// and the loops and demand in that network's edge and lane names
        /// (`<name>.onto.det.add.xml`, `<name>.onto.rou.xml`).
        #[arg(long)]
        onto: Option<PathBuf>,
        /// Write the programs of `<name>.tls.add.xml` (and `--onto`'s) as Greenwave's isolated
        /// actuated operation, SUMO `type="actuated"`: each stage from its minimum green up to
        /// its planned green times FACTOR (1 to 3; 2 when no value is given), gap-out after
        /// `--passage` on the network's stop-line loops (advance loops where a lane has no
        /// stop-line one); clearances stay fixed. Load `<name>.det.add.xml` with it.
        #[arg(long, value_name = "FACTOR", num_args = 0..=1, default_missing_value = "2",
              value_parser = sumo::parse_max_green_factor)]
        actuated: Option<f64>,
        /// Passage time of `--actuated`, seconds (1 to 10): a stage gaps out when its loops
        /// have seen no vehicle this long.
        #[arg(long, value_name = "SECONDS", default_value = "3", requires = "actuated",
              value_parser = sumo::parse_passage)]
        passage: f64,
        /// With `--actuated`: programs of three stages or more skip the stages nobody calls
        /// (SUMO's `next` phases, each transition checked by the plan validator). SUMO then
        /// picks among the calling stages by how many loops call, not in the plan's order as
        /// Greenwave does; measured worse than without on three of the four shipped networks
        /// (docs/benchmarks.md, "Stage skipping in SUMO").
        #[arg(long, requires = "actuated")]
        skip_stages: bool,
        /// Write the pedestrian groups into the plain network as signalised crossings: every
        /// edge gets a sidewalk (SUMO's lane 0; the vehicle lanes count from 1 in the plain
        /// files and loops), each pedestrian group a crossing over its leg with its walk in the
        /// programs, and the turns of permissive groups yield (`g`). SUMO's own programs built
        /// from these files then serve the crossings too (docs/sumo.md).
        #[arg(long)]
        crossings: bool,
    },
    /// Read a SUMO network (and routes and E1 loops) into a Greenwave network with default
    /// plans (`<name>.toml`) and demand (`<name>.demand.toml`). What cannot be mapped is
    /// printed and written to `<out>/import-report.txt`. See docs/sumo.md.
    Import {
        /// SUMO network (`.net.xml`).
        net: PathBuf,
        /// Route files (vehicles, trips, flows, routes).
        #[arg(long, num_args = 1..)]
        routes: Vec<PathBuf>,
        /// Additional file with E1 induction loops; without it, stop-line and advance
        /// detectors are placed on every signalised approach lane.
        #[arg(long)]
        detectors: Vec<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Network name (and file stem); defaults to the net file's stem.
        #[arg(long)]
        name: Option<String>,
        /// Demand slice length, seconds.
        #[arg(long, default_value_t = 900.0)]
        slice: f64,
    },
    /// SUMO E1 detector output as Greenwave detector reports (a JSON array, one per line) for
    /// `greenwave plan --counts`. Detector ids map by the import's rule (docs/sumo.md).
    Counts {
        /// E1 output file (`<detector><interval .../></detector>`).
        e1: PathBuf,
        /// The Greenwave network whose detectors the ids name.
        #[arg(long)]
        network: PathBuf,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Region written into the reports.
        #[arg(long, default_value = "sumo")]
        region: String,
    },
}

/// `--offsets`: how coordination groups get their offsets.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum OffsetsArg {
    /// A one-way green wave in the heavier direction (the planner's default).
    GreenWave,
    /// TRANSYT-style search of a delay-and-stops index from the green wave.
    Transyt,
    /// The search for groups no outside signal feeds, the green wave elsewhere.
    Auto,
}

/// The planner's parameters with `--offsets` applied.
/// The planner's parameters from the command line: `--offsets`, and
/// `--price-permissive-lefts` (permissive left turns count in the flow ratios as the through
/// vehicles they cost, by gap acceptance against the opposing stream).
fn plan_params(offsets: Option<OffsetsArg>, price_permissive_lefts: bool) -> PlanParams {
    let mut p = PlanParams::default();
    match offsets {
        Some(OffsetsArg::GreenWave) => p.offsets = OffsetChoice::GreenWave,
        Some(OffsetsArg::Transyt) => p.offsets = OffsetChoice::Transyt,
        Some(OffsetsArg::Auto) => p.offsets = OffsetChoice::Auto,
        None => {}
    }
    if price_permissive_lefts {
        p.permissive_left = Some(GapAcceptance::default());
    }
    p
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Every control on each shipped network with its time-varying demand; prints a table per
    /// network (or, with --json, an array of objects).
    Control {
        /// Print a JSON array of {network, control, mean_delay_s, travel_time_index,
        /// mean_speed_mps, completed, ...}.
        #[arg(long)]
        json: bool,
        /// Networks by name (default: single arterial grid4 district).
        #[arg(long, num_args = 1..)]
        networks: Vec<String>,
        /// Seeds 1..=N (N at least 1).
        #[arg(long, default_value_t = 5)]
        seeds: u64,
        /// Simulated seconds (default: the demand's duration, 2 h).
        #[arg(long)]
        duration: Option<f64>,
        /// Folder with the shipped networks.
        #[arg(long, default_value = "intersections/networks")]
        dir: PathBuf,
        /// Deploy every re-plan without the simulation check.
        #[arg(long)]
        no_validate: bool,
        /// How coordination groups get their offsets, in the fixed-webster plans and in every
        /// greenwave re-plan (default: the planner's default).
        #[arg(long, value_enum)]
        offsets: Option<OffsetsArg>,
        /// Greenwave's isolated actuated operation: each stage's maximum is its planned green
        /// times this factor (default 2.5; 1 to 3, the cabinets' limits).
        #[arg(long)]
        max_green_factor: Option<f64>,
        /// Price permissive left turns by gap acceptance against the opposing stream in the
        /// flow ratios, in the fixed-webster plans and in every greenwave plan (off by default;
        /// see docs/optimizer.md).
        #[arg(long)]
        price_permissive_lefts: bool,
        /// Least improvement of mean delay for greenwave's check to accept a re-plan, percent,
        /// 0 to under 100 (default: the adaptive loop's, 3).
        #[arg(long)]
        threshold: Option<f64>,
        /// Greenwave's commissioning does not offer the planner that prices permissive left
        /// turns: it re-plans with the fixed-webster planner everywhere (the loop before
        /// 2026-12-07; see docs/benchmarks.md).
        #[arg(long)]
        no_price_choice: bool,
        /// Greenwave's check keeps its simulated street from one re-plan to the next instead
        /// of replaying the last hour's estimates at each (see docs/benchmarks.md).
        #[arg(long)]
        persistent_twin: bool,
        /// Greenwave's check runs every seed even when its first two reject every candidate
        /// beyond doubt (see docs/optimizer.md, "Stopping early").
        #[arg(long)]
        no_early_reject: bool,
        /// Simulate with turn speeds (turners reach the stop line no faster than SUMO's
        /// internal-lane limits; off by default, see docs/benchmarks.md "Turn speeds").
        #[arg(long)]
        turn_speeds: bool,
    },
    /// Planning plus validation time on generated grids of about these many intersections.
    Planning {
        #[arg(long, num_args = 1.., default_values_t = [100usize, 1000])]
        sizes: Vec<usize>,
        /// Validation seeds 1..=N, N from 1 to 20 (default: the adaptive loop's check, 3).
        #[arg(long)]
        seeds: Option<u64>,
        /// Simulated seconds measured after the switch (default: the adaptive loop's, 3600).
        #[arg(long)]
        horizon: Option<f64>,
        /// Seconds of estimated demand replayed before the switch, in whole re-plan intervals
        /// (default: the adaptive loop's, 3600; 0: none).
        #[arg(long)]
        warmup: Option<f64>,
        #[arg(long)]
        json: bool,
        /// Make each east-west row of a generated grid a coordination group (generated grids
        /// have none), so that planning includes the groups' offsets.
        #[arg(long)]
        coordinate_rows: bool,
        /// How coordination groups get their offsets (default: the planner's default).
        #[arg(long, value_enum)]
        offsets: Option<OffsetsArg>,
        /// The check runs every seed even when its first two reject the candidate beyond doubt
        /// (the whole check's time: see docs/optimizer.md, "Stopping early").
        #[arg(long)]
        no_early_reject: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files, json } => check(&files, json),
        Command::Demo { dir } => demo::run(&dir),
        Command::Serve { config } => report(serve::run(&config)),
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
        Command::Sumo(SumoCommand::Export {
            network,
            plan,
            demand,
            out,
            netconvert,
            no_netconvert,
            seed,
            onto,
            actuated,
            passage,
            skip_stages,
            crossings,
        }) => match sumo::export(sumo::ExportArgs {
            network,
            plan,
            demand,
            out,
            netconvert,
            no_netconvert,
            seed,
            onto,
            actuated,
            passage_s: passage,
            skip_stages,
            crossings,
        }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Sumo(SumoCommand::Import {
            net,
            routes,
            detectors,
            out,
            name,
            slice,
        }) => report(sumo::import(sumo::ImportArgs {
            net,
            routes,
            detectors,
            out,
            name,
            slice_s: slice,
        })),
        Command::Sumo(SumoCommand::Counts {
            e1,
            network,
            out,
            region,
        }) => report(sumo::counts(sumo::CountsArgs {
            e1,
            network,
            out,
            region,
        })),
        Command::Plan {
            network,
            counts,
            out,
            demand,
            json,
            seeds,
            horizon,
            threshold,
            no_early_reject,
            offsets,
            double_cycling,
            price_permissive_lefts,
        } => report(plan::run(plan::Args {
            network,
            counts,
            out,
            demand,
            json,
            check: plan::Check {
                seeds,
                horizon_s: horizon,
                threshold_pct: threshold,
                early_reject: !no_early_reject,
            },
            plan: PlanParams {
                double_cycling,
                ..plan_params(offsets, price_permissive_lefts)
            },
        })),
        Command::Bench { what } => report(match what {
            BenchCommand::Control {
                json,
                networks,
                seeds,
                duration,
                dir,
                no_validate,
                offsets,
                max_green_factor,
                price_permissive_lefts,
                no_price_choice,
                threshold,
                persistent_twin,
                no_early_reject,
                turn_speeds,
            } => bench::control(bench::ControlArgs {
                dir,
                networks,
                seeds,
                duration_s: duration,
                json,
                no_validate,
                max_green_factor,
                persistent_twin,
                early_reject: !no_early_reject,
                turn_speeds,
                price_choice: !no_price_choice,
                threshold_pct: threshold,
                plan: plan_params(offsets, price_permissive_lefts),
            }),
            BenchCommand::Planning {
                sizes,
                seeds,
                horizon,
                warmup,
                json,
                coordinate_rows,
                offsets,
                no_early_reject,
            } => bench::planning(bench::PlanningArgs {
                sizes,
                seeds,
                horizon_s: horizon,
                warmup_s: warmup,
                json,
                coordinate_rows,
                early_reject: !no_early_reject,
                plan: plan_params(offsets, false),
            }),
        }),
    }
}

fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
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
