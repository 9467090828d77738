//! Checked demand: flows per entry per time slice and turning ratios per approach.

use std::collections::BTreeMap;

use crate::diag::{FieldPath, Problem};
use crate::model::{Endpoint, IntersectionIdx, LinkIdx, Network};
use crate::spec::DemandSpec;
use crate::time::Ms;

#[derive(Clone, Debug, PartialEq)]
pub struct EntryFlow {
    pub link: LinkIdx,
    /// veh/h in each slice.
    pub flows_veh_h: Vec<f64>,
}

/// Demand for one network: time-sliced entry flows and turning ratios.
#[derive(Clone, Debug, PartialEq)]
pub struct Demand {
    pub slice: Ms,
    pub slices: usize,
    pub entries: Vec<EntryFlow>,
    /// For each (intersection, incoming link): shares per outgoing link, summing to 1. Approaches
    /// the file does not list split in proportion to the lanes of their movements.
    pub turning: BTreeMap<(IntersectionIdx, LinkIdx), Vec<(LinkIdx, f64)>>,
}

impl Demand {
    /// Total time the demand covers.
    pub fn duration(&self) -> Ms {
        Ms(self.slice.0 * self.slices as i64)
    }

    /// Cumulative turning shares per incoming link (indexed like [`Network::links`]): for each
    /// movement with a positive share, in the order of the turning ratios, the cumulative
    /// probability (the last is exactly 1), the movement's index in its intersection, and the
    /// outgoing link. A vehicle draws one uniform number per junction against it. Links that
    /// end at no intersection, or without shares, have an empty table.
    pub fn turn_tables(&self, net: &Network) -> Vec<Vec<(f64, usize, LinkIdx)>> {
        let mut tables = vec![Vec::new(); net.links.len()];
        for (li, t) in tables.iter_mut().enumerate() {
            let crate::model::Endpoint::Intersection(ixi) = net.links[li].to else {
                continue;
            };
            let ix = &net.intersections[ixi.0];
            let Some(shares) = self.turning.get(&(ixi, LinkIdx(li))) else {
                continue;
            };
            let total: f64 = shares.iter().map(|s| s.1).sum();
            if total <= 0.0 {
                continue;
            }
            let mut cum = 0.0;
            for (to, share) in shares {
                if *share <= 0.0 {
                    continue;
                }
                if let Some(k) = ix
                    .movements
                    .iter()
                    .position(|m| m.from.0 == li && m.to == *to)
                {
                    cum += share / total;
                    t.push((cum, k, *to));
                }
            }
            if let Some(last) = t.last_mut() {
                last.0 = 1.0;
            }
        }
        tables
    }

    /// Flow of an entry at time `t` (veh/h); zero after the last slice.
    pub fn flow_at(&self, entry: usize, t: Ms) -> f64 {
        if t < Ms::ZERO || self.slice.0 == 0 {
            return 0.0;
        }
        let k = (t.0 / self.slice.0) as usize;
        self.entries[entry]
            .flows_veh_h
            .get(k)
            .copied()
            .unwrap_or(0.0)
    }

    /// Check a demand file against its network. Lists every problem.
    pub fn from_spec(net: &Network, spec: &DemandSpec) -> Result<Demand, Vec<Problem>> {
        let mut p = crate::diag::check_header(&spec.kind, spec.version, "demand");
        let root = FieldPath::root();
        let slice = match Ms::from_secs_f64(spec.slice_s) {
            Some(s) if s >= Ms::from_s(60) && s <= Ms::from_s(86_400) => s,
            _ => {
                p.push(Problem::new(
                    root.key("slice_s"),
                    format!("slice {} s must be 60 s to 24 h", spec.slice_s),
                ));
                Ms::from_s(900)
            }
        };
        let slices = spec.entries.first().map_or(0, |e| e.flows_veh_h.len());
        if spec.entries.is_empty() {
            p.push(Problem::new(
                root.key("entries"),
                "a demand file has at least one entry",
            ));
        }
        let mut entries: Vec<EntryFlow> = Vec::new();
        for (i, e) in spec.entries.iter().enumerate() {
            let ep = root.key("entries").index(i);
            let Some(link) = net.link(&e.link) else {
                p.push(Problem::new(
                    ep.key("link"),
                    format!("unknown link {:?}", e.link),
                ));
                continue;
            };
            if !matches!(net.links[link.0].from, Endpoint::Boundary(_)) {
                p.push(Problem::new(ep.key("link"), format!("link {:?} does not start at a boundary node, so traffic cannot enter there", e.link)));
            }
            if entries.iter().any(|o| o.link == link) {
                p.push(Problem::new(
                    ep.key("link"),
                    format!("link {:?} is listed twice", e.link),
                ));
            }
            if e.flows_veh_h.len() != slices || slices == 0 {
                p.push(Problem::new(ep.key("flows_veh_h"), format!("{} slices; every entry needs the same number as the first ({slices}), at least one", e.flows_veh_h.len())));
            }
            let cap = 2400.0 * net.links[link.0].lanes as f64;
            for (k, f) in e.flows_veh_h.iter().enumerate() {
                if !(f.is_finite() && *f >= 0.0 && *f <= cap) {
                    p.push(Problem::new(
                        ep.key("flows_veh_h").index(k),
                        format!("{f} veh/h is outside 0 to {cap} (2400 per lane)"),
                    ));
                }
            }
            entries.push(EntryFlow {
                link,
                flows_veh_h: e.flows_veh_h.clone(),
            });
        }

        let mut turning = BTreeMap::new();
        for (i, t) in spec.turning.iter().enumerate() {
            let tp = root.key("turning").index(i);
            let Some(ixi) = net.intersection(&t.intersection) else {
                p.push(Problem::new(
                    tp.key("intersection"),
                    format!("unknown intersection {:?}", t.intersection),
                ));
                continue;
            };
            let ix = &net.intersections[ixi.0];
            let Some(from) = net.link(&t.from).filter(|l| ix.approaches.contains(l)) else {
                p.push(Problem::new(
                    tp.key("from"),
                    format!(
                        "{:?} is not an incoming link of {:?}",
                        t.from, t.intersection
                    ),
                ));
                continue;
            };
            if turning.contains_key(&(ixi, from)) {
                p.push(Problem::new(
                    tp.clone(),
                    format!(
                        "turning ratios for {:?} at {:?} are given twice",
                        t.from, t.intersection
                    ),
                ));
            }
            let mut shares = Vec::new();
            let mut sum = 0.0;
            for (to, r) in &t.ratios {
                let rp = tp.key("ratios").key(to);
                let Some(tl) = net.link(to) else {
                    p.push(Problem::new(rp, format!("unknown link {to:?}")));
                    continue;
                };
                if !ix.movements.iter().any(|m| m.from == from && m.to == tl) {
                    p.push(Problem::new(
                        rp,
                        format!(
                            "no movement goes from {:?} to {to:?} at {:?}",
                            t.from, t.intersection
                        ),
                    ));
                    continue;
                }
                if !(r.is_finite() && *r >= 0.0 && *r <= 1.0) {
                    p.push(Problem::new(rp, format!("share {r} is outside 0 to 1")));
                    continue;
                }
                sum += r;
                shares.push((tl, *r));
            }
            if (sum - 1.0).abs() > 0.01 {
                p.push(Problem::new(
                    tp.key("ratios"),
                    format!("shares add up to {sum:.3}, not 1"),
                ));
            }
            turning.insert((ixi, from), shares);
        }
        // Defaults: in proportion to the lanes each movement uses.
        for (i, ix) in net.intersections.iter().enumerate() {
            for &a in &ix.approaches {
                let key = (IntersectionIdx(i), a);
                if turning.contains_key(&key) {
                    continue;
                }
                let ms: Vec<_> = ix.movements.iter().filter(|m| m.from == a).collect();
                let total: usize = ms.iter().map(|m| m.lanes.len()).sum();
                if total > 0 {
                    turning.insert(
                        key,
                        ms.iter()
                            .map(|m| (m.to, m.lanes.len() as f64 / total as f64))
                            .collect(),
                    );
                }
            }
        }
        if p.is_empty() {
            Ok(Demand {
                slice,
                slices,
                entries,
                turning,
            })
        } else {
            Err(p)
        }
    }
}
