//! Running SUMO's programs: finding them, building a `.net.xml` with `netconvert`, and running
//! `sumo` to read its speed figures. The only part of this crate that does I/O.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a SUMO program is: `$SUMO_HOME/bin`, then `PATH`, then the virtualenv `.venv-sumo`
/// (PyPI's `eclipse-sumo`) in the working directory or one of its parents.
pub fn find(program: &str) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(home) = std::env::var_os("SUMO_HOME") {
        candidates.push(PathBuf::from(home).join("bin").join(program));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join(program)));
    }
    if let Ok(mut dir) = std::env::current_dir() {
        loop {
            candidates.push(dir.join(".venv-sumo").join("bin").join(program));
            if !dir.pop() {
                break;
            }
        }
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// What went wrong running a SUMO program.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("could not start {program}: {source}")]
    Start {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("could not read {what} from the output of {program}")]
    Parse { program: String, what: String },
}

fn run(cmd: &mut Command) -> Result<(String, String), ToolError> {
    let program = format!("{:?}", cmd.get_program());
    let out = cmd.output().map_err(|source| ToolError::Start {
        program: program.clone(),
        source,
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(ToolError::Failed {
            program,
            status: out.status.to_string(),
            stderr: stderr.lines().take(20).collect::<Vec<_>>().join("\n"),
        });
    }
    Ok((stdout, stderr))
}

/// The `netconvert` arguments that build `<dir>/<name>.net.xml` from the plain files of an
/// export. No U-turns are added (our movements are all there is) and coordinates are kept.
pub fn netconvert_args(dir: &Path, name: &str) -> Vec<String> {
    let f = |ext: &str| dir.join(format!("{name}.{ext}")).display().to_string();
    vec![
        "--node-files".into(),
        f("nod.xml"),
        "--edge-files".into(),
        f("edg.xml"),
        "--connection-files".into(),
        f("con.xml"),
        "--tllogic-files".into(),
        f("tll.xml"),
        "--output-file".into(),
        f("net.xml"),
        "--no-turnarounds".into(),
        "true".into(),
        "--offset.disable-normalization".into(),
        "true".into(),
        "--no-warnings".into(),
        "true".into(),
    ]
}

/// Build `<dir>/<name>.net.xml` with `netconvert`; returns its path.
pub fn netconvert(netconvert: &Path, dir: &Path, name: &str) -> Result<PathBuf, ToolError> {
    run(Command::new(netconvert).args(netconvert_args(dir, name)))?;
    Ok(dir.join(format!("{name}.net.xml")))
}

/// What one `sumo` run reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SumoRun {
    /// Wall time of the simulation loop as SUMO measured it (`Duration:`), seconds.
    pub duration_s: f64,
    /// Vehicle updates per second (`UPS:`): SUMO's vehicle-steps per second.
    pub ups: f64,
    /// `Inserted:` vehicles.
    pub inserted: u64,
    /// Vehicles still running at the end.
    pub running: u64,
    /// Vehicles still waiting to be inserted at the end.
    pub waiting: u64,
    /// Mean over arrived vehicles (`Statistics (avg of N)`), when SUMO printed them.
    pub mean_time_loss_s: Option<f64>,
    pub mean_waiting_time_s: Option<f64>,
    pub mean_duration_s: Option<f64>,
    pub arrived: Option<u64>,
    /// Teleports (vehicles SUMO removed from a jam).
    pub teleports: u64,
}

impl SumoRun {
    /// Vehicle-steps the run did (UPS times the loop's duration).
    pub fn vehicle_steps(&self) -> f64 {
        self.ups * self.duration_s
    }
}

fn field(text: &str, key: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let l = l.trim();
        let rest = l.strip_prefix(key)?;
        rest.split_whitespace()
            .next()?
            .trim_end_matches("ms")
            .trim_end_matches('s')
            .parse()
            .ok()
    })
}

/// Read `sumo --duration-log.statistics` output.
pub fn parse_statistics(text: &str) -> Option<SumoRun> {
    let d = text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("Duration:")?.trim();
        if let Some(ms) = rest.strip_suffix("ms") {
            ms.trim().parse::<f64>().ok().map(|v| v / 1000.0)
        } else {
            rest.trim_end_matches('s').trim().parse::<f64>().ok()
        }
    })?;
    let ups = field(text, "UPS:")?;
    let stats = text
        .lines()
        .position(|l| l.trim_start().starts_with("Statistics (avg of"));
    let after = stats.map(|k| text.lines().skip(k).collect::<Vec<_>>().join("\n"));
    let arrived = stats.and_then(|k| {
        text.lines()
            .nth(k)?
            .trim()
            .strip_prefix("Statistics (avg of ")?
            .trim_end_matches("):")
            .trim_end_matches(')')
            .parse()
            .ok()
    });
    let teleports = text
        .lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix("Teleports:")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0);
    Some(SumoRun {
        duration_s: d,
        ups,
        inserted: field(text, "Inserted:").unwrap_or(0.0) as u64,
        running: field(text, "Running:").unwrap_or(0.0) as u64,
        waiting: field(text, "Waiting:").unwrap_or(0.0) as u64,
        mean_time_loss_s: after.as_deref().and_then(|a| field(a, "TimeLoss:")),
        mean_waiting_time_s: after.as_deref().and_then(|a| field(a, "WaitingTime:")),
        mean_duration_s: after.as_deref().and_then(|a| field(a, "Duration:")),
        arrived,
        teleports,
    })
}

/// Run `sumo` on a net and routes (and optional additional files) for `end_s` seconds at a
/// 1 s step, single-threaded, and read its statistics.
pub fn run_sumo(
    sumo: &Path,
    net: &Path,
    routes: &Path,
    additional: &[&Path],
    end_s: f64,
    seed: u64,
) -> Result<SumoRun, ToolError> {
    let mut cmd = Command::new(sumo);
    cmd.arg("-n").arg(net).arg("-r").arg(routes);
    if !additional.is_empty() {
        let a: Vec<String> = additional.iter().map(|p| p.display().to_string()).collect();
        cmd.arg("-a").arg(a.join(","));
    }
    cmd.args([
        "--step-length",
        "1",
        "--end",
        &format!("{end_s}"),
        "--seed",
        &seed.to_string(),
        "--no-step-log",
        "true",
        "--duration-log.statistics",
        "true",
        "--no-warnings",
        "true",
        "--time-to-teleport",
        "300",
    ]);
    let (stdout, stderr) = run(&mut cmd)?;
    parse_statistics(&format!("{stdout}\n{stderr}")).ok_or_else(|| ToolError::Parse {
        program: "sumo".into(),
        what: "the duration and UPS statistics".into(),
    })
}

/// The factor `vs_sumo` scales every entry flow by, from the value of `GW_VS_SUMO_DEMAND`
/// (unset: 1). Anything but a finite number above 0 is an error naming the variable.
pub fn demand_factor(value: Option<&str>) -> Result<f64, String> {
    let Some(v) = value else { return Ok(1.0) };
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|k| *k > 0.0 && k.is_finite())
        .ok_or_else(|| format!("GW_VS_SUMO_DEMAND={v}: want a factor above 0, e.g. 1.3"))
}

/// Whether `vs_sumo` runs our simulator with turn speeds (`simulator::TurnSpeeds`, SUMO's
/// internal-lane limits), from the value of `GW_VS_SUMO_TURN_SPEEDS`: `1` or `on` yes, `0` or
/// `off` no, unset the simulator's default (`None`); anything else is an error naming the
/// variable.
pub fn turn_speeds(value: Option<&str>) -> Result<Option<bool>, String> {
    switch("GW_VS_SUMO_TURN_SPEEDS", value)
}

/// An on/off environment switch `var` of the bench: unset `None`, `1`/`on` or `0`/`off`,
/// anything else an error naming the variable.
pub fn switch(var: &str, value: Option<&str>) -> Result<Option<bool>, String> {
    match value.map(str::trim) {
        None => Ok(None),
        Some("0") | Some("off") => Ok(Some(false)),
        Some("1") | Some("on") => Ok(Some(true)),
        Some(v) => Err(format!("{var}={v}: want 1 (on) or 0 (off)")),
    }
}

#[cfg(test)]
mod env_tests {
    use super::*;

    #[test]
    fn the_bench_settings_refuse_bad_values_by_name() {
        assert_eq!(demand_factor(None), Ok(1.0));
        assert_eq!(demand_factor(Some("1.3")), Ok(1.3));
        for bad in ["0", "-1", "x", "", "inf", "NaN"] {
            let e = demand_factor(Some(bad)).unwrap_err();
            assert!(e.starts_with(&format!("GW_VS_SUMO_DEMAND={bad}:")), "{e}");
        }
        assert_eq!(turn_speeds(None), Ok(None));
        assert_eq!(turn_speeds(Some("off")), Ok(Some(false)));
        assert_eq!(turn_speeds(Some("1")), Ok(Some(true)));
        let e = turn_speeds(Some("yes")).unwrap_err();
        assert!(e.starts_with("GW_VS_SUMO_TURN_SPEEDS=yes:"), "{e}");
        assert_eq!(switch("GW_VS_SUMO_CROSSINGS", Some("on")), Ok(Some(true)));
        let e = switch("GW_VS_SUMO_CROSSINGS", Some("2")).unwrap_err();
        assert!(e.starts_with("GW_VS_SUMO_CROSSINGS=2:"), "{e}");
    }
}
