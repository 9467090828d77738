//! Demand estimation: from detector counts to a flow per movement (veh/h).
//!
//! Per intersection and interval:
//! 1. **Lane clusters.** The lanes of an approach that movements share are joined into
//!    clusters (a movement's lanes all fall in one cluster). A cluster's stop-line counts (or
//!    advance counts on lanes without a stop-line loop) give the total of its movements exactly,
//!    whatever lanes drivers pick; a cluster of one movement (a left-turn pocket) gives that
//!    movement directly.
//! 2. **Turning split by constrained least squares.** The unknowns are the movement flows
//!    `q >= 0`. Rows: each measured cluster total (weight 10, nearly a constraint); each exit
//!    link whose every lane has an exit loop, `sum of q into it = exit count` (weight 1); and a
//!    weak prior (weight 0.1) that splits each shared cluster by the demand file's turning
//!    ratios when given, else by lanes. Where exit loops exist they decide the split; where
//!    they do not, the prior does. A cluster without any loop takes the history (the demand
//!    file's flow for that movement at that time of day) and is marked unmeasured. Solved as
//!    weighted normal equations (nalgebra's Cholesky) with an active set for `q >= 0` (Lawson
//!    & Hanson, *Solving Least Squares Problems*, 1974, ch. 23, simplified: negative
//!    components are fixed at 0 and the rest solved again).
//! 3. **Saturation.** A queue standing over a loop hides demand: the loop counts departures,
//!    not arrivals. When a lane's advance loop is occupied at least
//!    [`EstimateParams::saturated_occupancy_advance`] of the interval (or, without an advance
//!    loop, its stop-line loop at least [`EstimateParams::saturated_occupancy_stop_line`]),
//!    the cluster's movements are flagged `lower_bound`.
//! 4. **Smoothing: a scalar Kalman filter per movement** (R. E. Kalman, *A new approach to
//!    linear filtering and prediction problems*, J. Basic Eng. 82, 1960; applied to traffic
//!    volumes by I. Okutani and Y. J. Stephanedes, Transp. Res. B 18, 1984). State: the flow;
//!    process: with a history, the flow carried along the history's time-of-day profile (times
//!    the ratio of its flows at the two times, [`EstimateParams::history_trend`]), plus a
//!    random walk with standard deviation `10% of the flow + 20 veh/h` per interval;
//!    measurement noise: Poisson, `var = n / T²` for `n` vehicles in `T` hours. A lower-bound
//!    measurement below the prediction is censored (it says only "at least this", which the
//!    prediction already satisfies) and does not pull the estimate down.

use std::collections::BTreeMap;

use intersections::demand::Demand;
use intersections::model::Endpoint;
use intersections::spec::DetectorKind;
use intersections::{IntersectionIdx, LinkIdx, Ms, Network};
use nalgebra::{DMatrix, DVector};
use serde::Serialize;

use crate::counts::CountRecord;

/// Tuning of the estimator.
#[derive(Clone, Debug, PartialEq)]
pub struct EstimateParams {
    /// An advance loop occupied this share of an interval has a queue over it.
    pub saturated_occupancy_advance: f64,
    /// Without an advance loop: a stop-line loop occupied this share of an interval.
    pub saturated_occupancy_stop_line: f64,
    /// Random-walk standard deviation per interval, as a share of the flow...
    pub process_noise_share: f64,
    /// ...plus this many veh/h.
    pub process_noise_floor_veh_h: f64,
    /// Weight of the exit-count rows against the cluster totals (10) and the prior (0.1).
    pub exit_weight: f64,
    pub prior_weight: f64,
    /// With a history (the demand file as prior): the filter's prediction follows the
    /// history's time-of-day profile (the flow times the ratio of the history's flows at the
    /// two times) instead of standing still, and [`Estimator::forecast`] carries the
    /// estimate ahead the same way.
    pub history_trend: bool,
}

impl Default for EstimateParams {
    fn default() -> Self {
        EstimateParams {
            saturated_occupancy_advance: 0.5,
            saturated_occupancy_stop_line: 0.85,
            process_noise_share: 0.10,
            process_noise_floor_veh_h: 20.0,
            exit_weight: 1.0,
            prior_weight: 0.1,
            history_trend: true,
        }
    }
}

const CLUSTER_WEIGHT: f64 = 10.0;

/// The estimate for one movement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MovementEstimate {
    pub movement: String,
    pub flow_veh_h: f64,
    /// Standard deviation of the estimate (the filter's), veh/h.
    pub std_veh_h: f64,
    /// The last count was taken under a queue: demand is at least this.
    pub lower_bound: bool,
    /// At least one interval measured it; otherwise it is history (or 0 without any).
    pub measured: bool,
}

/// What a flow counted under a queue (a lower bound: the queue over the loop hid demand) is
/// multiplied by when plans are made for it ([`FlowEstimate::planning_flows`]): the adaptive
/// loop's default (`AdaptiveParams::lower_bound_boost`), `greenwave plan`'s and the
/// service's. 1.0 and 1.25 moved the benchmark within its noise (docs/benchmarks.md).
pub const LOWER_BOUND_BOOST: f64 = 1.1;

/// One movement's flow as a planning round estimated it.
#[derive(Clone, Debug, PartialEq)]
pub struct EstimatedFlow {
    pub intersection: String,
    /// The filter's estimate after the newest counts (flow, spread, measured or history).
    pub estimate: MovementEstimate,
    /// What the round planned for: the forecast for the interval to come, boosted where the
    /// count was a lower bound.
    pub planned_veh_h: f64,
}

/// Flows per movement of every intersection (indexed like the network).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowEstimate {
    pub intersections: Vec<IntersectionEstimate>,
    /// Intervals taken in (over all intersections).
    pub intervals: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IntersectionEstimate {
    pub intersection: String,
    pub movements: Vec<MovementEstimate>,
}

impl FlowEstimate {
    /// The flows to plan for: each movement's estimate, times `lower_bound_boost` where the
    /// count was a lower bound.
    pub fn planning_flows(&self, lower_bound_boost: f64) -> Vec<Vec<f64>> {
        self.intersections
            .iter()
            .map(|ix| {
                ix.movements
                    .iter()
                    .map(|m| {
                        if m.lower_bound {
                            m.flow_veh_h * lower_bound_boost
                        } else {
                            m.flow_veh_h
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

/// Movement flows a demand implies (veh/h per intersection and movement): entry flows carried
/// through the turning ratios until they leave, for slice `slice` or (with `None`) the mean of
/// all slices.
pub fn demand_flows(net: &Network, demand: &Demand, slice: Option<usize>) -> Vec<Vec<f64>> {
    let entry_flow = |k: usize| -> f64 {
        let f = &demand.entries[k].flows_veh_h;
        match slice {
            Some(s) => f.get(s).copied().unwrap_or(0.0),
            None => f.iter().sum::<f64>() / f.len().max(1) as f64,
        }
    };
    let mut inflow = vec![0.0; net.links.len()];
    for k in 0..demand.entries.len() {
        inflow[demand.entries[k].link.0] += entry_flow(k);
    }
    let share = |ix: usize, from: LinkIdx, to: LinkIdx| -> f64 {
        demand
            .turning
            .get(&(IntersectionIdx(ix), from))
            .and_then(|v| v.iter().find(|(l, _)| *l == to))
            .map_or(0.0, |(_, r)| *r)
    };
    let mut q: Vec<Vec<f64>> = net
        .intersections
        .iter()
        .map(|ix| vec![0.0; ix.movements.len()])
        .collect();
    let mut link = inflow.clone();
    for _ in 0..1000 {
        for (i, ix) in net.intersections.iter().enumerate() {
            for (m, mv) in ix.movements.iter().enumerate() {
                q[i][m] = link[mv.from.0] * share(i, mv.from, mv.to);
            }
        }
        let mut next = inflow.clone();
        for (i, ix) in net.intersections.iter().enumerate() {
            for (m, mv) in ix.movements.iter().enumerate() {
                next[mv.to.0] += q[i][m];
            }
        }
        let change = next
            .iter()
            .zip(&link)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        link = next;
        if change < 1e-3 {
            break;
        }
    }
    q
}

/// Lanes of an approach joined by the movements that share them.
#[derive(Clone, Debug)]
struct Cluster {
    link: LinkIdx,
    lanes: Vec<u32>,
    movements: Vec<usize>,
}

fn clusters(net: &Network, ix: usize) -> Vec<Cluster> {
    let x = &net.intersections[ix];
    let mut out = Vec::new();
    for &a in &x.approaches {
        let n = net.links[a.0].lanes as usize;
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(p: &mut [usize], i: usize) -> usize {
            let mut r = i;
            while p[r] != r {
                r = p[r];
            }
            p[i] = r;
            r
        }
        let mvs: Vec<usize> = (0..x.movements.len())
            .filter(|&m| x.movements[m].from == a)
            .collect();
        for &m in &mvs {
            let lanes = &x.movements[m].lanes;
            for w in lanes.windows(2) {
                let (r0, r1) = (
                    find(&mut parent, w[0] as usize % n.max(1)),
                    find(&mut parent, w[1] as usize % n.max(1)),
                );
                parent[r0] = r1;
            }
        }
        let mut by_root: BTreeMap<usize, Cluster> = BTreeMap::new();
        for &m in &mvs {
            let Some(&l0) = x.movements[m].lanes.first() else {
                continue;
            };
            let r = find(&mut parent, l0 as usize % n.max(1));
            by_root
                .entry(r)
                .or_insert_with(|| Cluster {
                    link: a,
                    lanes: Vec::new(),
                    movements: Vec::new(),
                })
                .movements
                .push(m);
        }
        for l in 0..n {
            let r = find(&mut parent, l);
            if let Some(c) = by_root.get_mut(&r) {
                c.lanes.push(l as u32);
            }
        }
        out.extend(by_root.into_values());
    }
    out
}

/// One least-squares row: (coefficients by movement, right-hand side, weight).
type Row = (Vec<(usize, f64)>, f64, f64);

/// Non-negative weighted least squares: minimise `sum w_r (a_r . q - b_r)^2` over `q >= 0`.
fn nnls(rows: &[Row], n: usize) -> Vec<f64> {
    let mut free: Vec<bool> = vec![true; n];
    let mut q = vec![0.0; n];
    for _ in 0..=n {
        let idx: Vec<usize> = (0..n).filter(|&i| free[i]).collect();
        if idx.is_empty() {
            return vec![0.0; n];
        }
        let pos: BTreeMap<usize, usize> = idx.iter().enumerate().map(|(k, &i)| (i, k)).collect();
        let k = idx.len();
        let mut ata = DMatrix::<f64>::zeros(k, k);
        let mut atb = DVector::<f64>::zeros(k);
        for (coef, b, w) in rows {
            let c: Vec<(usize, f64)> = coef
                .iter()
                .filter_map(|(i, v)| pos.get(i).map(|&p| (p, *v)))
                .collect();
            for &(p, vp) in &c {
                atb[p] += w * vp * b;
                for &(r, vr) in &c {
                    ata[(p, r)] += w * vp * vr;
                }
            }
        }
        // A little ridge keeps movements no row mentions at 0 and the system positive definite.
        for p in 0..k {
            ata[(p, p)] += 1e-6;
        }
        let sol = match ata.cholesky() {
            Some(ch) => ch.solve(&atb),
            None => return q,
        };
        let mut any_neg = false;
        for (&i, &p) in &pos {
            q[i] = sol[p];
            if sol[p] < 0.0 {
                free[i] = false;
                q[i] = 0.0;
                any_neg = true;
            }
        }
        for i in 0..n {
            if !free[i] {
                q[i] = 0.0;
            }
        }
        if !any_neg {
            break;
        }
    }
    q
}

/// How long a movement measured before may go unmeasured (its detectors in fault, or silent)
/// before its estimate is the history's again, when there is a history; without one it keeps
/// its last estimate.
pub const HISTORY_AFTER: Ms = Ms(30 * 60_000);

/// How the history carries a flow from a time when it expected `from` veh/h to one when it
/// expects `to`: their ratio, where both are large enough to say something (20 veh/h), kept
/// within a factor of 2.
fn profile_ratio(from: f64, to: f64) -> f64 {
    if from >= 20.0 && to >= 20.0 {
        (to / from).clamp(0.5, 2.0)
    } else {
        1.0
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Filter {
    x: f64,
    p: f64,
    /// The middle of the last interval measured (when `measured`).
    t: Ms,
    init: bool,
    lower_bound: bool,
    measured: bool,
}

/// The estimator: keeps one filter per movement; counts go in interval by interval.
#[derive(Clone, Debug)]
pub struct Estimator<'a> {
    net: &'a Network,
    prior: Option<&'a Demand>,
    params: EstimateParams,
    clusters: Vec<Vec<Cluster>>,
    /// Prior shares of each movement within its approach (demand file, else by lanes).
    shares: Vec<Vec<f64>>,
    filters: Vec<Vec<Filter>>,
    intervals: usize,
    /// History per slice (and the mean at the end), computed once.
    history: BTreeMap<Option<usize>, Vec<Vec<f64>>>,
}

impl<'a> Estimator<'a> {
    pub fn new(net: &'a Network, prior: Option<&'a Demand>, params: EstimateParams) -> Self {
        let clusters: Vec<Vec<Cluster>> = (0..net.intersections.len())
            .map(|i| clusters(net, i))
            .collect();
        let shares = net
            .intersections
            .iter()
            .enumerate()
            .map(|(i, ix)| {
                ix.movements
                    .iter()
                    .map(|mv| {
                        let from_demand = prior.and_then(|d| {
                            d.turning
                                .get(&(IntersectionIdx(i), mv.from))
                                .and_then(|v| v.iter().find(|(l, _)| *l == mv.to))
                                .map(|(_, r)| *r)
                        });
                        from_demand.unwrap_or_else(|| {
                            let total: usize = ix
                                .movements
                                .iter()
                                .filter(|m| m.from == mv.from)
                                .map(|m| m.lanes.len())
                                .sum();
                            mv.lanes.len() as f64 / total.max(1) as f64
                        })
                    })
                    .collect()
            })
            .collect();
        let filters = net
            .intersections
            .iter()
            .map(|ix| vec![Filter::default(); ix.movements.len()])
            .collect();
        let mut history = BTreeMap::new();
        if let Some(d) = prior {
            for s in 0..d.slices {
                history.insert(Some(s), demand_flows(net, d, Some(s)));
            }
            history.insert(None, demand_flows(net, d, None));
        }
        Estimator {
            net,
            prior,
            params,
            clusters,
            shares,
            filters,
            intervals: 0,
            history,
        }
    }

    /// History for intersection `ix` at time `t` (the demand slice of that time of day; the
    /// mean outside the file's span).
    fn history_at(&self, ix: usize, t: Ms) -> Option<&Vec<f64>> {
        let d = self.prior?;
        let tod = t.rem_euclid(Ms::from_s(86_400));
        let k = (tod.0 / d.slice.0.max(1)) as usize;
        let key = if k < d.slices { Some(k) } else { None };
        self.history.get(&key).map(|h| &h[ix])
    }

    /// What the history's time-of-day profile multiplies movement `m` of intersection `ix`
    /// by from time `from` to time `to` ([`profile_ratio`] of its flows then); 1 without a
    /// history or with [`EstimateParams::history_trend`] off. The filter's prediction and
    /// [`Estimator::forecast`] both carry the flow by it.
    fn carry(&self, ix: usize, m: usize, from: Ms, to: Ms) -> f64 {
        if !self.params.history_trend {
            return 1.0;
        }
        match (self.history_at(ix, from), self.history_at(ix, to)) {
            (Some(a), Some(b)) => profile_ratio(a[m], b[m]),
            _ => 1.0,
        }
    }

    /// Take in counts (any order, any intersections): each (intersection, interval) is one
    /// measurement, taken in order of interval end.
    pub fn push(&mut self, records: &[CountRecord]) {
        let mut groups: BTreeMap<(Ms, Ms, usize), Vec<&CountRecord>> = BTreeMap::new();
        for r in records {
            groups
                .entry((r.end, r.start, r.intersection.0))
                .or_default()
                .push(r);
        }
        for ((end, start, ix), recs) in groups {
            self.measure(ix, start, end, &recs);
        }
    }

    fn measure(&mut self, ixi: usize, start: Ms, end: Ms, recs: &[&CountRecord]) {
        let net = self.net;
        let ix = &net.intersections[ixi];
        let hours = (end - start).as_secs_f64() / 3600.0;
        if hours <= 0.0 {
            return;
        }
        // Per (link, lane): stop-line and advance counts and occupancies; per exit link lane.
        let mut stop: BTreeMap<(LinkIdx, u32), (u32, f64)> = BTreeMap::new();
        let mut adv: BTreeMap<(LinkIdx, u32), (u32, f64)> = BTreeMap::new();
        let mut exit: BTreeMap<(LinkIdx, u32), u32> = BTreeMap::new();
        for r in recs {
            let d = &ix.detectors[r.detector];
            let occ = r.occupancy.unwrap_or(0.0);
            let key = (d.link, d.lane);
            match d.kind {
                DetectorKind::StopLine => {
                    let e = stop.entry(key).or_default();
                    e.0 += r.count;
                    e.1 = e.1.max(occ);
                }
                DetectorKind::Advance => {
                    let e = adv.entry(key).or_default();
                    e.0 += r.count;
                    e.1 = e.1.max(occ);
                }
                DetectorKind::Exit => *exit.entry(key).or_default() += r.count,
            }
        }
        let n = ix.movements.len();
        let mut rows: Vec<Row> = Vec::new();
        let mut lower = vec![false; n];
        let mut measured = vec![false; n];
        let history = self
            .history_at(ixi, start + Ms((end - start).0 / 2))
            .cloned();
        for c in &self.clusters[ixi] {
            let mut total = 0.0;
            let mut seen = 0usize;
            let mut saturated = false;
            for &l in &c.lanes {
                let key = (c.link, l);
                let a = adv.get(&key);
                if let Some(&(cnt, occ)) = stop.get(&key) {
                    total += cnt as f64;
                    seen += 1;
                    saturated |= match a {
                        Some(&(_, ao)) => ao >= self.params.saturated_occupancy_advance,
                        None => occ >= self.params.saturated_occupancy_stop_line,
                    };
                } else if let Some(&(cnt, occ)) = a {
                    total += cnt as f64;
                    seen += 1;
                    saturated |= occ >= self.params.saturated_occupancy_advance;
                }
            }
            if seen == 0 {
                // No loop on this cluster: history, else nothing.
                for &m in &c.movements {
                    let h = history.as_ref().map_or(0.0, |h| h[m]);
                    rows.push((vec![(m, 1.0)], h, 1.0));
                }
                continue;
            }
            // Lanes without a loop carry what the measured lanes carry on average.
            let flow = total * c.lanes.len() as f64 / seen as f64 / hours;
            rows.push((
                c.movements.iter().map(|&m| (m, 1.0)).collect(),
                flow,
                CLUSTER_WEIGHT,
            ));
            if c.movements.len() > 1 {
                let sum: f64 = c.movements.iter().map(|&m| self.shares[ixi][m]).sum();
                for &m in &c.movements {
                    let pi = if sum > 0.0 {
                        self.shares[ixi][m] / sum
                    } else {
                        1.0 / c.movements.len() as f64
                    };
                    rows.push((vec![(m, 1.0)], pi * flow, self.params.prior_weight));
                }
            }
            for &m in &c.movements {
                measured[m] = true;
                lower[m] = saturated;
            }
        }
        for &x in &ix.exits {
            let lanes = net.links[x.0].lanes;
            let counts: Vec<u32> = (0..lanes)
                .filter_map(|l| exit.get(&(x, l)).copied())
                .collect();
            if counts.len() as u32 != lanes || lanes == 0 {
                continue;
            }
            // Only where every movement into the exit comes from a measured approach.
            let into: Vec<usize> = (0..n).filter(|&m| ix.movements[m].to == x).collect();
            if into.is_empty() || !into.iter().all(|&m| measured[m]) {
                continue;
            }
            let flow = counts.iter().sum::<u32>() as f64 / hours;
            rows.push((
                into.iter().map(|&m| (m, 1.0)).collect(),
                flow,
                self.params.exit_weight,
            ));
        }
        let q = nnls(&rows, n);
        self.intervals += 1;
        let mid = start + Ms((end - start).0 / 2);
        for m in 0..n {
            let z = q[m];
            // The history's profile from the last interval measured to this one.
            let g = self.carry(ixi, m, self.filters[ixi][m].t, mid);
            let f = &mut self.filters[ixi][m];
            if !measured[m] {
                // History only: it replaces the state unless something was measured before
                // and not too long ago (a detector in fault for longer than
                // `HISTORY_AFTER` leaves its movement to the history, not to the last count
                // carried on for ever).
                let stale = history.is_some() && mid - f.t >= HISTORY_AFTER;
                if !f.measured || stale {
                    f.measured = false;
                    f.lower_bound = false;
                    f.x = z;
                    f.p = (0.3 * z + 50.0).powi(2);
                    f.init = true;
                }
                continue;
            }
            // Poisson counts: n = z * hours vehicles, var(z) = n / hours^2.
            let r = (z * hours).max(1.0) / (hours * hours);
            if !f.init || !f.measured {
                f.x = z;
                f.p = r;
                f.t = mid;
                f.init = true;
                f.measured = true;
                f.lower_bound = lower[m];
                continue;
            }
            // Predict: the history's profile carries the flow from the last interval to this
            // one (`g`), then the random walk.
            f.x *= g;
            f.p *= g * g;
            f.t = mid;
            let qn = (self.params.process_noise_share * f.x
                + self.params.process_noise_floor_veh_h)
                .powi(2);
            f.p += qn;
            f.lower_bound = lower[m];
            if lower[m] && z < f.x {
                continue; // censored: "at least z" holds already
            }
            let k = f.p / (f.p + r);
            f.x += k * (z - f.x);
            f.p *= 1.0 - k;
        }
    }

    /// The current estimate. Movements never measured and without history are 0.
    pub fn estimate(&self) -> FlowEstimate {
        self.estimate_at(None)
    }

    /// The estimate carried ahead to time `at` along the history's time-of-day profile
    /// ([`EstimateParams::history_trend`]; without a history, or with the trend off, the
    /// current estimate): what to plan for the time the plans will run.
    pub fn forecast(&self, at: Ms) -> FlowEstimate {
        self.estimate_at(Some(at))
    }

    fn estimate_at(&self, at: Option<Ms>) -> FlowEstimate {
        let net = self.net;
        let intersections = net
            .intersections
            .iter()
            .enumerate()
            .map(|(i, ix)| IntersectionEstimate {
                intersection: ix.id.clone(),
                movements: ix
                    .movements
                    .iter()
                    .enumerate()
                    .map(|(m, mv)| {
                        let f = self.filters[i][m];
                        let (x, p) = if f.init {
                            let g = match at {
                                Some(at) if f.measured => self.carry(i, m, f.t, at),
                                _ => 1.0,
                            };
                            (f.x * g, f.p * g * g)
                        } else {
                            let h = self.history.get(&None).map_or(0.0, |h| h[i][m]);
                            (h, (0.3 * h + 50.0).powi(2))
                        };
                        MovementEstimate {
                            movement: mv.id.clone(),
                            flow_veh_h: x.max(0.0),
                            std_veh_h: p.max(0.0).sqrt(),
                            lower_bound: f.lower_bound,
                            measured: f.measured,
                        }
                    })
                    .collect(),
            })
            .collect();
        FlowEstimate {
            intersections,
            intervals: self.intervals,
        }
    }
}

/// Estimate flows from a batch of counts.
pub fn estimate(
    net: &Network,
    records: &[CountRecord],
    prior: Option<&Demand>,
    params: EstimateParams,
) -> FlowEstimate {
    let mut e = Estimator::new(net, prior, params);
    e.push(records);
    e.estimate()
}

/// A demand (one slice of `duration`) that carries the estimated flows: entry flows from the
/// movements leaving each entry link, turning ratios from the movement flows of each approach.
/// The simulator validates candidate plans against it.
pub fn demand_from_flows(
    net: &Network,
    flows: &[Vec<f64>],
    duration: Ms,
) -> Result<Demand, Vec<intersections::diag::Problem>> {
    demand_from_flow_slices(net, &[flows], duration)
}

/// A demand of one slice of length `slice` per element of `slices` (each an estimate of the
/// movement flows, oldest first), entry flows per slice as in [`demand_from_flows`]; the
/// turning ratios (one table for the whole demand) are the last slice's. `slices` must not be
/// empty.
pub fn demand_from_flow_slices(
    net: &Network,
    slices: &[&[Vec<f64>]],
    slice: Ms,
) -> Result<Demand, Vec<intersections::diag::Problem>> {
    use intersections::spec::{DemandSpec, EntryFlowSpec, TurningSpec};
    assert!(!slices.is_empty(), "a demand needs a slice");
    let mut entries = Vec::new();
    for l in net.entries() {
        let link = &net.links[l.0];
        let cap = 2400.0 * link.lanes as f64;
        let flows_veh_h = slices
            .iter()
            .map(|flows| {
                let flow = match link.to {
                    Endpoint::Intersection(ix) => net.intersections[ix.0]
                        .movements
                        .iter()
                        .enumerate()
                        .filter(|(_, m)| m.from == l)
                        .map(|(k, _)| flows[ix.0][k])
                        .sum::<f64>(),
                    Endpoint::Boundary(_) => 0.0,
                };
                (flow.clamp(0.0, cap) * 10.0).round() / 10.0
            })
            .collect();
        entries.push(EntryFlowSpec {
            link: link.id.clone(),
            flows_veh_h,
        });
    }
    let flows = slices.last().expect("checked above");
    let mut turning = Vec::new();
    for (i, ix) in net.intersections.iter().enumerate() {
        for &a in &ix.approaches {
            let mvs: Vec<usize> = (0..ix.movements.len())
                .filter(|&m| ix.movements[m].from == a)
                .collect();
            let total: f64 = mvs.iter().map(|&m| flows[i][m].max(0.0)).sum();
            if total <= 0.0 || mvs.is_empty() {
                continue;
            }
            // Shares per outgoing link (two movements to one link add up).
            let mut ratios: BTreeMap<String, f64> = BTreeMap::new();
            for &m in &mvs {
                *ratios
                    .entry(net.links[ix.movements[m].to.0].id.clone())
                    .or_default() += flows[i][m].max(0.0) / total;
            }
            turning.push(TurningSpec {
                intersection: ix.id.clone(),
                from: net.links[a.0].id.clone(),
                ratios,
            });
        }
    }
    let spec = DemandSpec {
        kind: "demand".into(),
        version: 1,
        network: String::new(),
        description: Some("estimated from detector counts".into()),
        slice_s: slice.as_secs_f64().max(60.0),
        entries,
        turning,
    };
    Demand::from_spec(net, &spec)
}
