//! The `Field` interface: what a signal controller sees of the street and what it sets there.
//!
//! A field is anything with detectors and signal heads: the simulator (in demos, CI and plan
//! validation) or a real cabinet's hardware I/O. Per intersection it gives [`Measurements`]
//! (detector states out) and takes one [`Colour`] per signal group (signal states in). The
//! signal logic on the other side implements [`SignalLogic`]: a synchronous step that takes
//! `now` and the measurements and returns when it next needs to run (STYLE.md §3).
//!
//! Both traits live here, in `intersections`, so that the simulator and the controller crate can
//! meet without depending on each other.

use serde::{Deserialize, Serialize};

use crate::model::IntersectionIdx;
use crate::runner::Colour;
use crate::time::Ms;

/// The state of one detector (an inductive loop), as a cabinet's detector card reports it.
/// Counters are cumulative from the start of the run; a consumer differences them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectorState {
    /// A vehicle is over the loop now.
    pub occupied: bool,
    /// Vehicles counted (rising edges) since the start.
    pub count: u64,
    /// Total time the loop was occupied since the start.
    pub occupied_time: Ms,
    /// When the loop last switched on (a vehicle arrived over it).
    pub last_on: Option<Ms>,
    /// When the loop last switched off (the loop became free).
    pub last_off: Option<Ms>,
}

/// Everything a field reports about one intersection at one moment.
///
/// `detectors` is indexed like [`crate::Intersection::detectors`]. The two queue arrays are
/// indexed like [`crate::Intersection::movements`]: vehicles on the incoming link that will take
/// the movement, and vehicles on the movement's outgoing link. A cabinet estimates them from
/// count-in/count-out detectors or video; the simulator reports them exactly. Max-pressure
/// control reads them; fixed and actuated control do not.
#[derive(Clone, Copy, Debug)]
pub struct Measurements<'a> {
    pub detectors: &'a [DetectorState],
    pub movement_queue_veh: &'a [u32],
    pub movement_downstream_veh: &'a [u32],
}

/// The street as a controller sees it.
pub trait Field {
    /// The field's current model time.
    fn now(&self) -> Ms;
    /// Number of intersections in the field.
    fn intersection_count(&self) -> usize;
    /// Detector states and queue estimates of one intersection.
    fn measurements(&self, ix: IntersectionIdx) -> Measurements<'_>;
    /// Show these colours (one per signal group) at one intersection from now on.
    fn set_colours(&mut self, ix: IntersectionIdx, colours: &[Colour]);
}

/// Signal logic for one intersection: fixed time, actuated, max-pressure, or a cabinet's
/// machine. Synchronous and pure: no clock, no I/O.
pub trait SignalLogic {
    /// Advance to `now` given the measurements; returns the next time the logic must run even
    /// if no detector changes. A field calls it at that time at the latest, and may call it
    /// earlier (for example whenever detectors change, or every step).
    fn step(&mut self, now: Ms, m: &Measurements<'_>) -> Ms;
    /// The colours (one per signal group) after the last step.
    fn colours(&self) -> &[Colour];
}

/// Run one logic per intersection against a field for one round: every logic steps at the
/// field's time and its colours are applied. Returns the earliest next wake-up.
pub fn drive<F: Field, L: SignalLogic>(field: &mut F, logics: &mut [L]) -> Ms {
    let now = field.now();
    let mut wake = Ms(i64::MAX);
    for (i, logic) in logics.iter_mut().enumerate() {
        let ix = IntersectionIdx(i);
        let next = logic.step(now, &field.measurements(ix));
        wake = wake.min(next);
        field.set_colours(ix, logic.colours());
    }
    wake
}
