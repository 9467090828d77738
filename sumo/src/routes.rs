//! SUMO demand (`<vehicle>`, `<trip>`, `<flow>`, `<route>`, `<routeDistribution>`) as a
//! Greenwave demand: flows per entry and time slice, and turning ratios per approach.
//!
//! Every vehicle (or a flow's expected vehicles, spread over its interval) counts on the first
//! link of its route, in the slice of its departure; every pair of consecutive links of its
//! route counts as one turn at the junction between them. Greenwave's demand is entry flows and
//! turning ratios, so routes become ratios: which turn follows which is not kept. Trips
//! (`from`/`to`, optional `via`) take the fastest path at the speed limits (Dijkstra over
//! SUMO's connections), as `duarouter` would on an empty network.
//!
//! Reported, not mapped: vehicles that depart on a link that does not start at a boundary node
//! (Greenwave's traffic enters at the boundary), routes cut where they turn around at a dead
//! end, routes that end inside the network (in Greenwave they go on by the turning ratios),
//! vehicle types, persons and containers.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use intersections::spec::{DemandSpec, EntryFlowSpec, NetworkSpec, TurningSpec};
use roxmltree::Node;

use crate::import::{ImportOptions, Mapping};
use crate::xml::{Source, SumoError, Xml};

/// Default end of a flow without `end`, seconds (SUMO's: 24 h).
const FLOW_END_DEFAULT_S: f64 = 86_400.0;

/// A route with its weight: vehicles per slice.
struct Stream {
    edges: Vec<usize>,
    /// (begin, end, rate veh/s) or a single departure (begin == end, rate = vehicles).
    begin: f64,
    end: f64,
    vehicles: f64,
    file: String,
    line: usize,
}

struct Ctx<'m> {
    m: &'m Mapping,
    routes: BTreeMap<String, Vec<(Vec<usize>, f64)>>,
}

fn parse_edges(x: &Xml, n: Node, attr: &str, m: &Mapping) -> Result<Vec<usize>, SumoError> {
    let v = x.req(n, attr)?;
    let mut out = Vec::new();
    for id in v.split_whitespace() {
        match m.edge_index.get(id) {
            Some(&e) => out.push(e),
            None => return Err(x.err_attr(n, attr, format!("unknown edge {id:?}"))),
        }
    }
    if out.is_empty() {
        return Err(x.err_attr(n, attr, "no edges"));
    }
    Ok(out)
}

fn check_connected(
    x: &Xml,
    n: Node,
    attr: &str,
    edges: &[usize],
    m: &Mapping,
) -> Result<(), SumoError> {
    for w in edges.windows(2) {
        if !m.sumo_pairs.contains(&(w[0], w[1])) {
            return Err(x.err_attr(
                n,
                attr,
                format!(
                    "no connection from edge {:?} to edge {:?}",
                    m.edges[w[0]].id, m.edges[w[1]].id
                ),
            ));
        }
    }
    Ok(())
}

/// Fastest path from edge `a` to edge `b` (both included), by free-flow travel time.
fn fastest(m: &Mapping, a: usize, b: usize) -> Option<Vec<usize>> {
    let n = m.edges.len();
    let cost = |e: usize| -> u64 {
        let l = &m.edges[e];
        let len = l.lanes.iter().map(|x| x.length).fold(0.0, f64::max);
        let v = l.lanes.iter().map(|x| x.speed).fold(0.1, f64::max);
        (len / v * 1000.0).round() as u64 + 1
    };
    let succ = &m.successors;
    let mut dist = vec![u64::MAX; n];
    let mut prev = vec![usize::MAX; n];
    let mut heap = BinaryHeap::new();
    dist[a] = 0;
    heap.push(Reverse((0u64, a)));
    while let Some(Reverse((d, e))) = heap.pop() {
        if d > dist[e] {
            continue;
        }
        if e == b {
            break;
        }
        for &t in &succ[e] {
            let nd = d + cost(t);
            if nd < dist[t] {
                dist[t] = nd;
                prev[t] = e;
                heap.push(Reverse((nd, t)));
            }
        }
    }
    if dist[b] == u64::MAX {
        return None;
    }
    let mut path = vec![b];
    let mut e = b;
    while e != a {
        e = prev[e];
        path.push(e);
    }
    path.reverse();
    Some(path)
}

fn trip_route(x: &Xml, n: Node, m: &Mapping) -> Result<Vec<usize>, SumoError> {
    let from = parse_edges(x, n, "from", m)?[0];
    let to = parse_edges(x, n, "to", m)?[0];
    let mut stops = vec![from];
    if n.attribute("via").is_some() {
        stops.extend(parse_edges(x, n, "via", m)?);
    }
    stops.push(to);
    let mut path = vec![from];
    for w in stops.windows(2) {
        let Some(seg) = fastest(m, w[0], w[1]) else {
            return Err(x.err_attr(
                n,
                "to",
                format!(
                    "no route from edge {:?} to edge {:?}",
                    m.edges[w[0]].id, m.edges[w[1]].id
                ),
            ));
        };
        path.extend_from_slice(&seg[1..]);
    }
    Ok(path)
}

/// The routes (with probabilities) a vehicle or flow takes.
fn routes_of(x: &Xml, n: Node, ctx: &Ctx) -> Result<Vec<(Vec<usize>, f64)>, SumoError> {
    if let Some(r) = n.children().find(|c| c.has_tag_name("route")) {
        let e = parse_edges(x, r, "edges", ctx.m)?;
        check_connected(x, r, "edges", &e, ctx.m)?;
        return Ok(vec![(e, 1.0)]);
    }
    if let Some(rd) = n.children().find(|c| c.has_tag_name("routeDistribution")) {
        return distribution(x, rd, ctx);
    }
    if let Some(id) = n.attribute("route") {
        return ctx
            .routes
            .get(id)
            .cloned()
            .ok_or_else(|| x.err_attr(n, "route", format!("unknown route {id:?}")));
    }
    if n.attribute("from").is_some() || n.attribute("to").is_some() {
        return Ok(vec![(trip_route(x, n, ctx.m)?, 1.0)]);
    }
    Err(x.err(
        n,
        "no route: give `route`, a nested <route>, or `from` and `to`",
    ))
}

fn distribution(x: &Xml, rd: Node, ctx: &Ctx) -> Result<Vec<(Vec<usize>, f64)>, SumoError> {
    let mut out = Vec::new();
    for r in rd.children().filter(|c| c.has_tag_name("route")) {
        let p = x.opt_f64(r, "probability")?.unwrap_or(1.0);
        if p < 0.0 {
            return Err(x.err_attr(r, "probability", format!("{p} is negative")));
        }
        if let Some(refid) = r.attribute("refId") {
            let Some(rs) = ctx.routes.get(refid) else {
                return Err(x.err_attr(r, "refId", format!("unknown route {refid:?}")));
            };
            out.extend(rs.iter().map(|(e, q)| (e.clone(), q * p)));
            continue;
        }
        let e = parse_edges(x, r, "edges", ctx.m)?;
        check_connected(x, r, "edges", &e, ctx.m)?;
        out.push((e, p));
    }
    let total: f64 = out.iter().map(|r| r.1).sum();
    if out.is_empty() || total <= 0.0 {
        return Err(x.err(
            rd,
            "a route distribution needs routes with a positive probability",
        ));
    }
    Ok(out.into_iter().map(|(e, p)| (e, p / total)).collect())
}

/// Vehicles per second of a flow.
fn flow_rate(x: &Xml, n: Node, begin: f64, end: f64) -> Result<f64, SumoError> {
    if let Some(q) = x.opt_f64(n, "vehsPerHour")? {
        return Ok(q / 3600.0);
    }
    if let Some(p) = n.attribute("period") {
        let p = p.trim();
        if let Some(r) = p.strip_prefix("exp(").and_then(|r| r.strip_suffix(')')) {
            return r
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r >= 0.0)
                .ok_or_else(|| x.err_attr(n, "period", format!("{p:?} is not exp(rate)")));
        }
        return match p.parse::<f64>() {
            Ok(v) if v > 0.0 && v.is_finite() => Ok(1.0 / v),
            _ => Err(x.err_attr(n, "period", format!("{p:?} is not a positive number"))),
        };
    }
    if let Some(p) = x.opt_f64(n, "probability")? {
        if !(0.0..=1.0).contains(&p) {
            return Err(x.err_attr(n, "probability", format!("{p} is outside 0 to 1")));
        }
        return Ok(p);
    }
    if let Some(k) = x.opt_f64(n, "number")? {
        if k < 0.0 {
            return Err(x.err_attr(n, "number", format!("{k} is negative")));
        }
        return Ok(if end > begin { k / (end - begin) } else { 0.0 });
    }
    Err(x.err(n, "a flow needs vehsPerHour, period, probability or number"))
}

/// The demand of the route files, or `None` when no vehicle enters at a boundary node.
pub(crate) fn demand(
    files: &[Source],
    spec: &NetworkSpec,
    m: &Mapping,
    opts: &ImportOptions,
    report: &mut Vec<String>,
) -> Result<Option<DemandSpec>, SumoError> {
    let mut ctx = Ctx {
        m,
        routes: BTreeMap::new(),
    };
    let mut streams: Vec<Stream> = Vec::new();
    let mut not_mapped: BTreeMap<String, usize> = BTreeMap::new();
    for src in files {
        let x = Xml::parse(*src)?;
        let root = x.root(&["routes", "additional"])?;
        for n in root.children().filter(|n| n.is_element()) {
            let tag = n.tag_name().name();
            let line = x.line(n);
            match tag {
                "route" => {
                    let id = x.req(n, "id")?;
                    let e = parse_edges(&x, n, "edges", m)?;
                    check_connected(&x, n, "edges", &e, m)?;
                    ctx.routes.insert(id.to_string(), vec![(e, 1.0)]);
                }
                "routeDistribution" => {
                    let id = x.req(n, "id")?;
                    let d = distribution(&x, n, &ctx)?;
                    ctx.routes.insert(id.to_string(), d);
                }
                "vehicle" | "trip" => {
                    let depart = x.req_time(n, "depart")?;
                    for (edges, p) in routes_of(&x, n, &ctx)? {
                        streams.push(Stream {
                            edges,
                            begin: depart,
                            end: depart,
                            vehicles: p,
                            file: src.file.into(),
                            line,
                        });
                    }
                }
                "flow" => {
                    let begin = x.opt_time(n, "begin")?.unwrap_or(0.0);
                    let end = x.opt_time(n, "end")?.unwrap_or(FLOW_END_DEFAULT_S);
                    if end < begin {
                        return Err(x.err_attr(
                            n,
                            "end",
                            format!("end {end} s is before begin {begin} s"),
                        ));
                    }
                    let rate = flow_rate(&x, n, begin, end)?;
                    let total = rate * (end - begin);
                    for (edges, p) in routes_of(&x, n, &ctx)? {
                        streams.push(Stream {
                            edges,
                            begin,
                            end,
                            vehicles: total * p,
                            file: src.file.into(),
                            line,
                        });
                    }
                }
                "vType" | "vTypeDistribution" | "person" | "personFlow" | "container"
                | "containerFlow" | "interval" => {
                    *not_mapped.entry(tag.to_string()).or_insert(0) += 1;
                }
                _ => {}
            }
        }
    }
    for (t, k) in &not_mapped {
        let why = if t.starts_with("vType") {
            "Greenwave's simulator has one driver model"
        } else {
            "Greenwave's demand is vehicles"
        };
        report.push(format!("{k} <{t}> elements not mapped ({why})"));
    }

    // Entries and turns.
    let slice = opts.slice_s;
    let horizon = streams
        .iter()
        .map(|s| s.end.max(s.begin))
        .fold(0.0, f64::max);
    let slices = ((horizon / slice).ceil() as usize).max(1);
    let mut entries: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut turns: BTreeMap<(String, usize), BTreeMap<usize, f64>> = BTreeMap::new();
    let (mut inner_start, mut cut, mut ends_inside, mut total) = (0.0, 0.0, 0.0, 0.0);
    let mut inner_example = None;
    let mut cut_example = None;
    for s in &streams {
        total += s.vehicles;
        let first = s.edges[0];
        if m.link_of[first].is_none() || !m.starts_at_boundary[first] {
            inner_start += s.vehicles;
            inner_example.get_or_insert_with(|| format!("{}:{}", s.file, s.line));
            continue;
        }
        // Per slice.
        let row = entries.entry(first).or_insert_with(|| vec![0.0; slices]);
        if s.end <= s.begin {
            let k = ((s.begin / slice).floor().max(0.0) as usize).min(slices - 1);
            row[k] += s.vehicles;
        } else {
            let rate = s.vehicles / (s.end - s.begin);
            for (k, v) in row.iter_mut().enumerate() {
                let a = (k as f64 * slice).max(s.begin);
                let b = ((k + 1) as f64 * slice).min(s.end);
                if b > a {
                    *v += rate * (b - a);
                }
            }
        }
        // Turns along the route.
        let mut cur = first;
        let mut done = true;
        for &next in &s.edges[1..] {
            let ix = m.to_intersection[cur].as_ref();
            if m.ends_at_boundary[cur] || !m.movements.contains(&(cur, next)) || ix.is_none() {
                cut += s.vehicles;
                cut_example.get_or_insert_with(|| {
                    format!(
                        "{}:{}, from edge {:?} to {:?}",
                        s.file, s.line, m.edges[cur].id, m.edges[next].id
                    )
                });
                done = false;
                break;
            }
            let Some(ix) = ix else { break };
            *turns
                .entry((ix.clone(), cur))
                .or_default()
                .entry(next)
                .or_insert(0.0) += s.vehicles;
            cur = next;
        }
        if done && !m.ends_at_boundary[cur] {
            ends_inside += s.vehicles;
        }
    }
    if inner_start > 0.0 {
        report.push(format!(
            "{inner_start:.0} of {total:.0} vehicles not imported: they depart on a link that does not start at a boundary node (first at {})",
            inner_example.unwrap_or_default()
        ));
    }
    if cut > 0.0 {
        report.push(format!(
            "{cut:.0} vehicles' routes cut where they leave the imported movements (a turnaround, or a skipped link), first at {}",
            cut_example.unwrap_or_default()
        ));
    }
    if ends_inside > 0.0 {
        report.push(format!(
            "{ends_inside:.0} vehicles' routes end inside the network; in Greenwave they go on by the turning ratios to an exit"
        ));
    }
    let entered = total - inner_start;
    report.push(format!(
        "demand: {entered:.0} vehicles on {} entries in {slices} slices of {slice} s, turning ratios at {} approaches",
        entries.len(),
        turns.len()
    ));
    if entries.is_empty() {
        report.push("no demand written: no vehicle enters at a boundary node".into());
        return Ok(None);
    }
    let mut capped = Vec::new();
    let entry_specs: Vec<EntryFlowSpec> = entries
        .into_iter()
        .map(|(e, counts)| {
            let link = m.link_of[e].clone().unwrap_or_default();
            let lanes = spec
                .links
                .iter()
                .find(|l| l.id == link)
                .map_or(1, |l| l.lanes);
            let cap = 2400.0 * lanes as f64;
            let flows = counts
                .iter()
                .map(|c| {
                    let q = (c * 3600.0 / slice * 1000.0).round() / 1000.0;
                    if q > cap {
                        capped.push(link.clone());
                        cap
                    } else {
                        q
                    }
                })
                .collect();
            EntryFlowSpec {
                link,
                flows_veh_h: flows,
            }
        })
        .collect();
    if !capped.is_empty() {
        capped.dedup();
        report.push(format!(
            "entry flows above Greenwave's 2400 veh/h per lane capped on: {}",
            capped.join(", ")
        ));
    }
    let turning = turns
        .into_iter()
        .filter_map(|((ix, from), to)| {
            let sum: f64 = to.values().sum();
            (sum > 0.0).then(|| TurningSpec {
                intersection: ix,
                from: m.link_of[from].clone().unwrap_or_default(),
                ratios: to
                    .into_iter()
                    .map(|(t, v)| (m.link_of[t].clone().unwrap_or_default(), v / sum))
                    .collect(),
            })
        })
        .collect();
    Ok(Some(DemandSpec {
        kind: "demand".into(),
        version: 1,
        network: format!("{}.toml", opts.name),
        description: Some(format!(
            "Imported from SUMO routes {} by `greenwave sumo import`",
            files.iter().map(|f| f.file).collect::<Vec<_>>().join(", ")
        )),
        slice_s: slice,
        entries: entry_specs,
        turning,
    }))
}
