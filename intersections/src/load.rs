//! Reading files: TOML text to checked types, with every problem located (file, line, field).
//! Network, demand and plan files say what they are in their `kind` field.

use std::path::{Path, PathBuf};

use crate::demand::Demand;
use crate::diag::{from_toml, Diagnostic, Diagnostics, FieldPath, SourceMap};
use crate::model::{keeps_group_cycle, IntersectionIdx, Network};
use crate::plan::{self, Plan};
use crate::spec::{DemandSpec, NetworkSpec, PlanFileSpec};
use crate::Ms;

/// What a file holds, from its `kind` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Network,
    Demand,
    Plans,
}

/// A checked file of any kind.
#[derive(Clone, Debug)]
pub enum Loaded {
    Network(Network),
    Demand { network: Network, demand: Demand },
    Plans { network: Network, plans: PlanSet },
}

/// Plans from a plan file, checked against their network.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanSet {
    pub network_file: PathBuf,
    pub plans: Vec<(IntersectionIdx, Plan)>,
}

fn read(path: &Path) -> Result<String, Diagnostics> {
    crate::diag::read_text(path)
}

fn one(d: Diagnostic) -> Diagnostics {
    Diagnostics(vec![d])
}

/// The `kind` of a TOML text.
pub fn kind_of(file: &str, text: &str) -> Result<FileKind, Diagnostics> {
    let map = SourceMap::new(file, text);
    let doc = match toml_edit::ImDocument::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let msg = crate::diag::one_line(e.message());
            return Err(one(map.at(
                e.span().map(|s| s.start),
                FieldPath::root(),
                format!("not valid TOML: {msg}"),
            )));
        }
    };
    match doc.get("kind").and_then(|k| k.as_str()) {
        Some("network") => Ok(FileKind::Network),
        Some("demand") => Ok(FileKind::Demand),
        Some("plans") => Ok(FileKind::Plans),
        Some(other) => Err(one(map.at(
            None,
            FieldPath::root().key("kind"),
            format!("unknown kind {other:?}; expected \"network\", \"demand\" or \"plans\""),
        ))),
        None => Err(one(map.at(
            Some(0),
            FieldPath::root().key("kind"),
            "missing `kind = \"network\" | \"demand\" | \"plans\"` at the top of the file",
        ))),
    }
}

/// Parse a network file's text into its spec, unchecked (for a tool that edits the spec
/// before building it); `file` names it in errors.
pub fn network_spec_from_str(file: &str, text: &str) -> Result<NetworkSpec, Diagnostics> {
    from_toml(&SourceMap::new(file, text), text).map_err(one)
}

/// Parse and check a network from text; `file` names it in errors.
pub fn network_from_str(file: &str, text: &str) -> Result<Network, Diagnostics> {
    let map = SourceMap::new(file, text);
    let spec = network_spec_from_str(file, text)?;
    Network::from_spec(&spec)
        .map_err(|ps| Diagnostics(ps.into_iter().map(|p| map.locate(p)).collect()))
}

/// Read and check a network file.
pub fn load_network(path: &Path) -> Result<Network, Diagnostics> {
    let text = read(path)?;
    network_from_str(&path.display().to_string(), &text)
}

fn referenced_network(
    file: &Path,
    map: &SourceMap<'_>,
    rel: &str,
) -> Result<(PathBuf, Network), Diagnostics> {
    let base = file.parent().unwrap_or(Path::new("."));
    let np = base.join(rel);
    if !np.exists() {
        return Err(one(map.at(
            None,
            FieldPath::root().key("network"),
            format!("network file {} does not exist", np.display()),
        )));
    }
    match load_network(&np) {
        Ok(n) => Ok((np, n)),
        Err(mut d) => {
            d.0.insert(
                0,
                map.at(
                    None,
                    FieldPath::root().key("network"),
                    format!("network file {} has errors:", np.display()),
                ),
            );
            Err(d)
        }
    }
}

/// Parse and check a demand file; its network is read from the path it names (relative to it).
pub fn demand_from_str(file: &Path, text: &str) -> Result<(Network, Demand), Diagnostics> {
    let name = file.display().to_string();
    let map = SourceMap::new(&name, text);
    let spec: DemandSpec = from_toml(&map, text).map_err(one)?;
    let (_, net) = referenced_network(file, &map, &spec.network)?;
    let d = Demand::from_spec(&net, &spec)
        .map_err(|ps| Diagnostics(ps.into_iter().map(|p| map.locate(p)).collect()))?;
    Ok((net, d))
}

/// Read and check a demand file (and its network).
pub fn load_demand(path: &Path) -> Result<(Network, Demand), Diagnostics> {
    let text = read(path)?;
    demand_from_str(path, &text)
}

/// Check a demand file against a network already loaded (its `network` field is not read).
pub fn load_demand_for(path: &Path, net: &Network) -> Result<Demand, Diagnostics> {
    let text = read(path)?;
    let name = path.display().to_string();
    let map = SourceMap::new(&name, &text);
    let spec: DemandSpec = from_toml(&map, &text).map_err(one)?;
    Demand::from_spec(net, &spec)
        .map_err(|ps| Diagnostics(ps.into_iter().map(|p| map.locate(p)).collect()))
}

/// Check the plans of a plan-file text against a network.
pub fn plans_for(
    net: &Network,
    file: &str,
    text: &str,
) -> Result<Vec<(IntersectionIdx, Plan)>, Diagnostics> {
    let map = SourceMap::new(file, text);
    let spec: PlanFileSpec = from_toml(&map, text).map_err(one)?;
    let mut diags = Vec::new();
    let root = FieldPath::root();
    diags.extend(
        crate::diag::check_header(&spec.kind, spec.version, "plans")
            .into_iter()
            .map(|p| map.locate(p)),
    );
    let mut out = Vec::new();
    // The file index of each plan in `out`, for locating the group check's problems.
    let mut at = Vec::new();
    for (i, ps) in spec.plans.iter().enumerate() {
        let path = root.key("plans").index(i);
        let Some(ixi) = net.intersection(&ps.intersection) else {
            diags.push(map.at(
                None,
                path.key("intersection"),
                format!(
                    "unknown intersection {:?} in network {:?}",
                    ps.intersection, net.name
                ),
            ));
            continue;
        };
        if out
            .iter()
            .any(|(o, p): &(IntersectionIdx, Plan)| *o == ixi && p.id == ps.id)
        {
            diags.push(map.at(
                None,
                path.key("id"),
                format!("plan {:?} for {:?} is given twice", ps.id, ps.intersection),
            ));
        }
        match plan::validate(&net.intersections[ixi.0], &net.safety, &ps.plan(), &path) {
            Ok(p) => {
                out.push((ixi, p));
                at.push(i);
            }
            Err(ps) => diags.extend(ps.into_iter().map(|p| map.locate(p))),
        }
    }
    // A coordination group runs one cycle: the plans of one id for its members share it (or
    // half of it, double cycling), as the network's own schedules must.
    for g in &net.coordination_groups {
        let mut ids: Vec<&str> = out
            .iter()
            .filter(|(ix, _)| g.intersections.contains(ix))
            .map(|(_, p)| p.id.as_str())
            .collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let members: Vec<(usize, &(IntersectionIdx, Plan))> = out
                .iter()
                .enumerate()
                .filter(|(_, (ix, p))| g.intersections.contains(ix) && p.id == id)
                .collect();
            // The group's cycle: the one that most members run or run half of (the shortest on
            // a tie), so that the odd member is the one named.
            let Some((_, std::cmp::Reverse(max))) = members
                .iter()
                .flat_map(|(_, (_, p))| [p.cycle, Ms(p.cycle.0 * 2)])
                .map(|g| {
                    let n = members
                        .iter()
                        .filter(|(_, (_, p))| keeps_group_cycle(p.cycle, g))
                        .count();
                    (n, std::cmp::Reverse(g))
                })
                .max()
            else {
                continue;
            };
            for (k, (ix, p)) in members {
                if !keeps_group_cycle(p.cycle, max) {
                    diags.push(map.at(
                        None,
                        root.key("plans").index(at[k]).key("cycle_s"),
                        format!(
                            "plan {id:?} of {:?} runs a {} cycle, but its coordination group {:?} runs {}: members share one cycle (or half of it)",
                            net.intersections[ix.0].id, p.cycle, g.id, max
                        ),
                    ));
                }
            }
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(diags))
    }
}

/// Read and check a plan file (and its network).
pub fn load_plans(path: &Path) -> Result<(Network, PlanSet), Diagnostics> {
    let text = read(path)?;
    let name = path.display().to_string();
    let map = SourceMap::new(&name, &text);
    let spec: PlanFileSpec = from_toml(&map, &text).map_err(one)?;
    let (np, net) = referenced_network(path, &map, &spec.network)?;
    let plans = plans_for(&net, &name, &text)?;
    Ok((
        net,
        PlanSet {
            network_file: np,
            plans,
        },
    ))
}

/// Read and check any Greenwave file, whatever its kind.
pub fn load_any(path: &Path) -> Result<Loaded, Diagnostics> {
    let text = read(path)?;
    let name = path.display().to_string();
    match kind_of(&name, &text)? {
        FileKind::Network => network_from_str(&name, &text).map(Loaded::Network),
        FileKind::Demand => {
            demand_from_str(path, &text).map(|(network, demand)| Loaded::Demand { network, demand })
        }
        FileKind::Plans => {
            load_plans(path).map(|(network, plans)| Loaded::Plans { network, plans })
        }
    }
}
