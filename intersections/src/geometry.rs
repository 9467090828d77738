//! Geometry of a junction: bearings of its legs, turns, which movements cross or merge, and the
//! clearance times that follow from it.
//!
//! Conflicts use the chord model: every leg has an entry point and an exit point on a circle
//! around the junction (right-hand traffic: a leg's entry lies counter-clockwise of its exit),
//! and a movement is the chord from its entry point to its exit point. Two movements conflict
//! when their chords cross, or when they end on the same exit (merge). Movements from the same
//! entry diverge and do not conflict. A pedestrian crossing of a leg conflicts with every
//! movement that enters or leaves by that leg.

use crate::spec::{SafetySpec, Turn};
use crate::time::Ms;

/// Bearing in degrees, counter-clockwise from east (the x axis), in `[0, 360)`.
pub fn bearing_deg(from_x: f64, from_y: f64, to_x: f64, to_y: f64) -> f64 {
    let b = (to_y - from_y).atan2(to_x - from_x).to_degrees();
    b.rem_euclid(360.0)
}

/// Signed difference `a - b` of two bearings, in `(-180, 180]`.
pub fn angle_diff(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(360.0);
    if d > 180.0 {
        d - 360.0
    } else {
        d
    }
}

/// The turn from a leg at bearing `in_leg` (bearing from the junction out along the incoming
/// road) to a leg at bearing `out_leg`.
pub fn classify_turn(in_leg: f64, out_leg: f64) -> Turn {
    let heading_in = (in_leg + 180.0).rem_euclid(360.0);
    let a = angle_diff(out_leg, heading_in);
    if a.abs() <= 35.0 {
        Turn::Through
    } else if a.abs() >= 160.0 {
        Turn::Uturn
    } else if a > 0.0 {
        Turn::Left
    } else {
        Turn::Right
    }
}

/// Offset of entry and exit points from the leg's bearing, degrees.
const EPS: f64 = 5.0;

/// Entry point of a leg on the chord circle (right-hand traffic).
pub fn entry_point(leg: f64) -> f64 {
    (leg + EPS).rem_euclid(360.0)
}

/// Exit point of a leg on the chord circle (right-hand traffic).
pub fn exit_point(leg: f64) -> f64 {
    (leg - EPS).rem_euclid(360.0)
}

/// Whether `x` lies strictly inside the counter-clockwise arc from `a` to `b`.
fn strictly_inside(a: f64, b: f64, x: f64) -> bool {
    let span = (b - a).rem_euclid(360.0);
    let off = (x - a).rem_euclid(360.0);
    off > 1e-9 && off < span - 1e-9
}

/// How two vehicle movements, given as (entry leg bearing, exit leg bearing), interact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interaction {
    None,
    Cross,
    Merge,
}

/// Whether two vehicle movements cross or merge. Legs are identified by bearing; equal
/// bearings mean the same leg.
pub fn vehicle_interaction(a: (f64, f64), b: (f64, f64)) -> Interaction {
    let same = |x: f64, y: f64| angle_diff(x, y).abs() < 1e-6;
    if same(a.0, b.0) {
        return Interaction::None; // same entry: diverge
    }
    if same(a.1, b.1) {
        return Interaction::Merge;
    }
    let (p1, q1) = (entry_point(a.0), exit_point(a.1));
    let (p2, q2) = (entry_point(b.0), exit_point(b.1));
    if strictly_inside(p1, q1, p2) != strictly_inside(p1, q1, q2) {
        Interaction::Cross
    } else {
        Interaction::None
    }
}

/// Yellow by the ITE kinematic formula y = t + v / (2a + 2Gg), clamped and rounded up to 0.1 s.
pub fn ite_yellow(safety: &SafetySpec, speed_mps: f64, grade_pct: f64) -> Ms {
    let g = 9.81;
    let denom = (2.0 * safety.deceleration_mps2 + 2.0 * (grade_pct / 100.0) * g).max(0.5);
    let y = safety.reaction_time_s + speed_mps / denom;
    let y = y.clamp(safety.yellow_min_s, safety.yellow_max_s);
    Ms::from_secs_f64(y)
        .unwrap_or(Ms::from_s(6))
        .ceil_to(Ms(100))
}

/// All-red r = (W + L) / v: the time for a vehicle that entered at the end of yellow to clear
/// the junction, clamped to `[0, all_red_max]` and rounded up to 0.1 s.
pub fn all_red(safety: &SafetySpec, clearing_width_m: f64, speed_mps: f64) -> Ms {
    let v = speed_mps.max(1.0);
    let r = ((clearing_width_m + safety.vehicle_length_m) / v).clamp(0.0, safety.all_red_max_s);
    Ms::from_secs_f64(r)
        .unwrap_or(Ms::from_s(6))
        .ceil_to(Ms(100))
}

/// Length of a movement's path through the junction relative to the crossed width: a left turn
/// sweeps about as far as a through movement, a right turn about half.
pub fn path_factor(turn: Turn) -> f64 {
    match turn {
        Turn::Through | Turn::Left => 1.0,
        Turn::Right | Turn::Uturn => 0.5,
    }
}

/// Speed at which a movement crosses the junction: turning vehicles are slower.
pub fn crossing_speed(turn: Turn, approach_speed_mps: f64) -> f64 {
    match turn {
        Turn::Through => approach_speed_mps,
        Turn::Left => approach_speed_mps.min(8.0),
        Turn::Right => approach_speed_mps.min(5.0),
        Turn::Uturn => approach_speed_mps.min(4.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Legs of a plain crossroads: east 0, north 90, west 180, south 270.
    const E: f64 = 0.0;
    const N: f64 = 90.0;
    const W: f64 = 180.0;
    const S: f64 = 270.0;

    #[test]
    fn turns() {
        assert_eq!(classify_turn(N, S), Turn::Through);
        // From the north leg (southbound), turning left goes east.
        assert_eq!(classify_turn(N, E), Turn::Left);
        assert_eq!(classify_turn(N, W), Turn::Right);
        assert_eq!(classify_turn(N, N), Turn::Uturn);
    }

    #[test]
    fn crossroads_conflicts() {
        use Interaction::*;
        // Opposing throughs do not conflict, crossing throughs do.
        assert_eq!(vehicle_interaction((N, S), (S, N)), None);
        assert_eq!(vehicle_interaction((N, S), (E, W)), Cross);
        // Left turn crosses the opposing through.
        assert_eq!(vehicle_interaction((N, E), (S, N)), Cross);
        // Opposing lefts pass each other.
        assert_eq!(vehicle_interaction((N, E), (S, W)), None);
        // Right turn merges with the through from the left.
        assert_eq!(vehicle_interaction((N, W), (E, W)), Merge);
        assert_eq!(vehicle_interaction((N, W), (W, E)), None);
        // Same entry diverges.
        assert_eq!(vehicle_interaction((N, W), (N, S)), None);
    }

    #[test]
    fn ite_yellow_50kmh() {
        let s = SafetySpec::default();
        // 50 km/h: 1 + 13.89 / 6 = 3.31 s, rounded up to 3.4 s.
        assert_eq!(ite_yellow(&s, 50.0 / 3.6, 0.0), Ms(3400));
        // Slow approaches clamp at 3 s, fast ones at 6 s.
        assert_eq!(ite_yellow(&s, 5.0, 0.0), Ms(3000));
        assert_eq!(ite_yellow(&s, 40.0, 0.0), Ms(6000));
        // Downhill needs more yellow.
        assert!(ite_yellow(&s, 50.0 / 3.6, -5.0) > ite_yellow(&s, 50.0 / 3.6, 0.0));
    }
}
