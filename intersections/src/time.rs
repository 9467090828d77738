//! Model time: integer milliseconds in a newtype (STYLE.md §6). Nothing in this crate reads the
//! wall clock; every function that needs the time takes it as an argument.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A duration or an instant in milliseconds. Instants count from a shared reference time
/// (for plans: the coordination reference; on the wire: the Unix epoch).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Ms(pub i64);

impl Ms {
    pub const ZERO: Ms = Ms(0);

    /// Whole seconds.
    pub const fn from_s(s: i64) -> Ms {
        Ms(s * 1000)
    }

    /// Seconds given as a decimal number, rounded to the nearest millisecond. `None` for a
    /// value that is not finite or does not fit.
    pub fn from_secs_f64(s: f64) -> Option<Ms> {
        if !s.is_finite() || s.abs() > 1e12 {
            return None;
        }
        Some(Ms((s * 1000.0).round() as i64))
    }

    /// Seconds as a decimal number (for display and for the physics, never for timing logic).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Round up to a multiple of `step` (a positive duration).
    pub fn ceil_to(self, step: Ms) -> Ms {
        Ms(self.0.div_euclid(step.0) * step.0
            + if self.0.rem_euclid(step.0) == 0 {
                0
            } else {
                step.0
            })
    }

    /// `self mod m`, always in `0..m`.
    pub fn rem_euclid(self, m: Ms) -> Ms {
        Ms(self.0.rem_euclid(m.0))
    }
}

impl Add for Ms {
    type Output = Ms;
    fn add(self, o: Ms) -> Ms {
        Ms(self.0 + o.0)
    }
}

impl AddAssign for Ms {
    fn add_assign(&mut self, o: Ms) {
        self.0 += o.0;
    }
}

impl Sub for Ms {
    type Output = Ms;
    fn sub(self, o: Ms) -> Ms {
        Ms(self.0 - o.0)
    }
}

impl fmt::Display for Ms {
    /// Seconds with as many decimals as needed: `5 s`, `3.3 s`, `0.25 s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1000;
        let frac = (self.0 % 1000).abs();
        let sign = if self.0 < 0 && whole == 0 { "-" } else { "" };
        if frac == 0 {
            write!(f, "{sign}{whole} s")
        } else {
            let s = format!("{frac:03}");
            write!(f, "{sign}{whole}.{} s", s.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_rounding() {
        assert_eq!(Ms(5000).to_string(), "5 s");
        assert_eq!(Ms(3300).to_string(), "3.3 s");
        assert_eq!(Ms(-250).to_string(), "-0.25 s");
        assert_eq!(Ms(3301).ceil_to(Ms(100)), Ms(3400));
        assert_eq!(Ms(3300).ceil_to(Ms(100)), Ms(3300));
        assert_eq!(Ms(-5).rem_euclid(Ms(100)), Ms(95));
        assert_eq!(Ms::from_secs_f64(3.3336), Some(Ms(3334)));
        assert_eq!(Ms::from_secs_f64(f64::NAN), None);
    }
}
