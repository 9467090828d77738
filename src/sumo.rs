//! `greenwave sumo export`: a Greenwave network, its plans and its demand as SUMO files, built
//! into a `.net.xml` with SUMO's `netconvert` when it is installed. Assembly only; the mapping
//! lives in the `sumo` crate.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use intersections::load;

pub struct ExportArgs {
    pub network: PathBuf,
    pub plan: Option<PathBuf>,
    pub demand: Option<PathBuf>,
    pub out: PathBuf,
    pub netconvert: Option<PathBuf>,
    pub no_netconvert: bool,
    pub seed: Option<u64>,
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
    let add = a.out.join(format!("{}.tls.add.xml", files.name));
    let rou = a.out.join(format!("{}.rou.xml", files.name));
    if demand.is_some() {
        println!(
            "run it: sumo -n {} -r {} -a {} --step-length 1",
            net_xml.display(),
            rou.display(),
            add.display()
        );
    }
    Ok(())
}
