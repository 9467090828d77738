//! `greenwave sumo export`: a Greenwave network, its plans and its demand as SUMO files, built
//! into a `.net.xml` with SUMO's `netconvert` when it is installed. Assembly only; the mapping
//! lives in the `sumo` crate.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use intersections::load;
use intersections::messages::{Operation, MAX_GREEN_FACTOR_RANGE, PASSAGE_S_RANGE};

pub struct ExportArgs {
    pub network: PathBuf,
    pub plan: Option<PathBuf>,
    pub demand: Option<PathBuf>,
    pub out: PathBuf,
    pub netconvert: Option<PathBuf>,
    pub no_netconvert: bool,
    pub seed: Option<u64>,
    pub onto: Option<PathBuf>,
    /// Isolated actuated programs with this maximum green factor.
    pub actuated: Option<f64>,
    pub passage_s: f64,
    /// `--skip-stages`: the actuated programs skip stages nobody calls.
    pub skip_stages: bool,
    /// `--crossings`: the pedestrian groups as signalised crossings of the plain network.
    pub crossings: bool,
}

fn in_range(s: &str, range: &std::ops::RangeInclusive<f64>, what: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{v} is outside {} to {} ({what})",
            range.start(),
            range.end()
        ))
    }
}

/// `--actuated FACTOR`: within the cabinet's limits for `max_green_factor`.
pub fn parse_max_green_factor(s: &str) -> Result<f64, String> {
    in_range(
        s,
        &MAX_GREEN_FACTOR_RANGE,
        "a stage's maximum green is its planned green times the factor",
    )
}

/// `--passage SECONDS`: within the cabinet's limits for `passage_s`.
pub fn parse_passage(s: &str) -> Result<f64, String> {
    in_range(s, &PASSAGE_S_RANGE, "the passage time in seconds")
}

fn default_demand(network: &Path) -> Option<PathBuf> {
    let stem = network.file_stem()?.to_str()?;
    let p = network.with_file_name(format!("{stem}.demand.toml"));
    p.exists().then_some(p)
}

pub fn export(a: ExportArgs) -> Result<()> {
    let net = load::load_network(&a.network).map_err(|d| anyhow!("{d}"))?;
    let plans = match &a.plan {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            load::plans_for(&net, &p.display().to_string(), &text).map_err(|d| anyhow!("{d}"))?
        }
        None => Vec::new(),
    };
    let demand_path = a.demand.clone().or_else(|| default_demand(&a.network));
    let demand = match &demand_path {
        Some(p) => Some(load::load_demand_for(p, &net).map_err(|d| anyhow!("{d}"))?),
        None => None,
    };
    let opts = ::sumo::ExportOptions {
        vehicles_of_seed: a.seed,
        operation: match a.actuated {
            Some(max_green_factor) => Operation::Actuated {
                max_green_factor,
                passage_s: a.passage_s,
            },
            None => Operation::Coordinated,
        },
        skip_stages: a.skip_stages,
        crossings: a.crossings,
        // With --onto, the routes and loops in SUMO's names too (NAME.onto.rou.xml,
        // NAME.onto.det.add.xml), for SUMO's own net.
        onto_names: match &a.onto {
            Some(onto) => {
                let text = read(onto)?;
                let file = onto.display().to_string();
                Some(::sumo::sumo_names(::sumo::Source {
                    file: &file,
                    text: &text,
                })?)
            }
            None => None,
        },
        ..::sumo::ExportOptions::default()
    };
    let files = ::sumo::export(&net, &plans, demand.as_ref(), &opts)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    for (name, text) in files.files() {
        let p = a.out.join(&name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        println!("wrote {}", p.display());
    }
    for n in &files.notes {
        println!("note: {n}");
    }
    if let Some(onto) = &a.onto {
        let text = read(onto)?;
        let file = onto.display().to_string();
        let o = ::sumo::programs_onto(
            ::sumo::Source {
                file: &file,
                text: &text,
            },
            &net,
            &files.programs,
            &files.connection_list,
            &opts.program_id,
        )?;
        let p = a.out.join(format!("{}.onto.add.xml", files.name));
        write(&p, &o.additional)?;
        if a.actuated.is_some() {
            println!(
                "note: the actuated programs of {} gap out on the loops of {}.onto.det.add.xml: load both",
                p.display(),
                files.name
            );
        }
        println!(
            "{} of {} traffic lights of {file} run Greenwave's plans",
            o.mapped.len(),
            o.mapped.len() + o.kept.len()
        );
        for k in o.kept.iter().chain(&o.notes) {
            println!("note: {k}");
        }
    }
    if demand.is_none() {
        println!("note: no demand (pass --demand FILE, or put <network>.demand.toml next to the network): no routes written");
    }
    if a.no_netconvert {
        return Ok(());
    }
    let Some(nc) = a
        .netconvert
        .clone()
        .or_else(|| ::sumo::tools::find("netconvert"))
    else {
        println!(
            "netconvert not found (SUMO_HOME, PATH or .venv-sumo): build the net yourself with\n  netconvert {}",
            ::sumo::tools::netconvert_args(&a.out, &files.name).join(" ")
        );
        return Ok(());
    };
    let net_xml = ::sumo::tools::netconvert(&nc, &a.out, &files.name)?;
    println!("built {} with {}", net_xml.display(), nc.display());
    let mut add = a
        .out
        .join(format!("{}.tls.add.xml", files.name))
        .display()
        .to_string();
    if a.actuated.is_some() {
        // The actuated programs name the loops: load them first.
        let det = a.out.join(format!("{}.det.add.xml", files.name));
        add = format!("{},{add}", det.display());
    }
    let rou = a.out.join(format!("{}.rou.xml", files.name));
    if demand.is_some() {
        println!(
            "run it: sumo -n {} -r {} -a {add} --step-length 1",
            net_xml.display(),
            rou.display(),
        );
    }
    Ok(())
}

fn source(p: &(String, String)) -> ::sumo::Source<'_> {
    ::sumo::Source {
        file: &p.0,
        text: &p.1,
    }
}

pub struct ImportArgs {
    pub net: PathBuf,
    pub routes: Vec<PathBuf>,
    pub detectors: Vec<PathBuf>,
    pub out: PathBuf,
    pub name: Option<String>,
    pub slice_s: f64,
}

fn read(p: &Path) -> Result<String> {
    std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
}

fn write(p: &Path, text: &str) -> Result<()> {
    std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
    println!("wrote {}", p.display());
    Ok(())
}

/// `greenwave sumo import`: SUMO files in, Greenwave network and demand out, checked by
/// Greenwave's own loaders before the command succeeds.
pub fn import(a: ImportArgs) -> Result<()> {
    let name = match &a.name {
        Some(n) => n.clone(),
        None => {
            let f = a
                .net
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or("imported");
            let stem = f.strip_suffix(".xml").unwrap_or(f);
            let stem = stem.strip_suffix(".net").unwrap_or(stem);
            ::sumo::greenwave_id(stem)
        }
    };
    let net_text = read(&a.net)?;
    let net_name = a.net.display().to_string();
    let route_texts: Vec<(String, String)> = a
        .routes
        .iter()
        .map(|p| Ok((p.display().to_string(), read(p)?)))
        .collect::<Result<_>>()?;
    let det_texts: Vec<(String, String)> = a
        .detectors
        .iter()
        .map(|p| Ok((p.display().to_string(), read(p)?)))
        .collect::<Result<_>>()?;

    let imported = ::sumo::import(
        ::sumo::Source {
            file: &net_name,
            text: &net_text,
        },
        &route_texts.iter().map(source).collect::<Vec<_>>(),
        &det_texts.iter().map(source).collect::<Vec<_>>(),
        &::sumo::ImportOptions {
            name: name.clone(),
            slice_s: a.slice_s,
        },
    )?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let net_path = a.out.join(format!("{name}.toml"));
    write(&net_path, &::sumo::import::network_toml(&imported.network)?)?;
    let net = load::load_network(&net_path).map_err(|d| anyhow!("{d}"))?;
    if let Some(d) = &imported.demand {
        let p = a.out.join(format!("{name}.demand.toml"));
        write(&p, &::sumo::import::demand_toml(d)?)?;
        load::load_demand_for(&p, &net).map_err(|d| anyhow!("{d}"))?;
    }
    let signals = imported
        .signals
        .iter()
        .filter(|s| s.cycle.is_some())
        .count();
    let mut report = format!(
        "Import of {net_name} as network {name:?}: {} intersections ({signals} signalised, of {} traffic-light junctions), {} boundary nodes, {} links\n",
        imported.network.intersections.len(),
        imported.signals.len(),
        imported.network.nodes.len(),
        imported.network.links.len()
    );
    for line in &imported.report {
        report.push_str(line);
        report.push('\n');
    }
    print!("{report}");
    write(&a.out.join("import-report.txt"), &report)?;
    Ok(())
}

pub struct CountsArgs {
    pub e1: PathBuf,
    pub network: PathBuf,
    pub out: PathBuf,
    pub region: String,
}

/// `greenwave sumo counts`: SUMO E1 output as detector reports for `greenwave plan --counts`.
pub fn counts(a: CountsArgs) -> Result<()> {
    let net = load::load_network(&a.network).map_err(|d| anyhow!("{d}"))?;
    let text = read(&a.e1)?;
    let file = a.e1.display().to_string();
    let reports = ::sumo::counts(
        &net,
        ::sumo::Source {
            file: &file,
            text: &text,
        },
        &a.region,
    )?;
    let vehicles: u64 = reports
        .iter()
        .flat_map(|r| r.detectors.iter().map(|d| d.count as u64))
        .sum();
    write(&a.out, &::sumo::counts_json(&reports)?)?;
    println!(
        "{} detector reports ({} vehicles counted) for network {:?}",
        reports.len(),
        vehicles,
        net.name
    );
    Ok(())
}
