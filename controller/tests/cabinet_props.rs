//! Property test of the whole cabinet logic: random sequences of signed (and forged, stale,
//! unsafe) plans, commands and detector inputs, with local plans run on schedule or isolated
//! actuated. The colours it emits are checked by the
//! independent `intersections::audit::Audit` (not by the controller's own monitor), and the
//! monitor must never have had to trip.

use std::path::Path;

use controller::cabinet::{Cabinet, DetectorLimits, LocalMode, Persisted, Settings};
use intersections::audit::Audit;
use intersections::load::load_network;
use intersections::messages::{Command, CommandAction, Mode, PlanDeployment, WIRE_VERSION};
use intersections::model::Network;
use intersections::signing::{Signer25519, Verifier25519};
use intersections::Ms;
use proptest::prelude::*;

const T0: Ms = Ms(1_780_000_000_000);

fn networks() -> Vec<Network> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .contains("kind = \"network\"")
        })
        .map(|f| load_network(&f).unwrap())
        .collect()
}

#[derive(Clone, Debug)]
enum Op {
    /// A plan of the intersection with this offset, green tweak, and signature choice.
    Plan {
        which: usize,
        offset_s: u16,
        tweak_s: i8,
        forge: bool,
        stale: bool,
    },
    Cmd(u8),
    Detectors(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..8, 0u16..200, -6i8..6, proptest::bool::weighted(0.2), proptest::bool::weighted(0.2))
            .prop_map(|(which, offset_s, tweak_s, forge, stale)| Op::Plan { which, offset_s, tweak_s, forge, stale }),
        2 => (0u8..6).prop_map(Op::Cmd),
        2 => any::<u64>().prop_map(Op::Detectors),
    ]
}

fn centre() -> Signer25519 {
    Signer25519::from_seed("centre-1", [1; 32])
}

fn run(net: &Network, ixi: usize, ops: &[(u32, Op)], local: LocalMode) -> Result<(), String> {
    let ix = &net.intersections[ixi];
    let s = Settings {
        region: "r".into(),
        intersection: ix.id.clone(),
        report_interval: None,
        backup_time: Ms::from_s(900),
        utc_offset: Ms::ZERO,
        detector_limits: DetectorLimits::default(),
        state_file: None,
    };
    let v = Verifier25519::from_base64("centre-1", &centre().public_base64()).unwrap();
    let mut cab = Cabinet::new(s, net.clone(), v, Persisted::default(), T0).unwrap();
    cab.set_local_mode(local);
    let mut now = T0;
    let ndet = ix.detectors.len();
    let (first, _) = cab.tick(now, &vec![false; ndet]);
    let mut audit = Audit::new(ix, &first, now);
    let mut version = 0u64;
    let mut seq = 0u64;
    let mut pattern = 0u64;
    for (delay, op) in ops {
        let until = now + Ms(*delay as i64);
        while now < until {
            now = cab.next_wake(now).min(until);
            let occ: Vec<bool> = (0..ndet)
                .map(|d| (pattern >> (d % 64)) & 1 == 1 && (now.0 / 1000) % 3 == 0)
                .collect();
            let (colours, _) = cab.tick(now, &occ);
            audit.see(now, &colours)?;
            if cab.mode() == Mode::Fault {
                return Err(format!(
                    "{now}: the monitor tripped: {:?}",
                    cab.status(now, true).fault
                ));
            }
        }
        match op {
            Op::Plan {
                which,
                offset_s,
                tweak_s,
                forge,
                stale,
            } => {
                let p = &ix.plans[which % ix.plans.len()];
                let mut spec = p.to_spec(ix);
                spec.offset_s = (*offset_s as f64) % spec.cycle_s;
                // Move time between the first two stages (sometimes below a minimum: unsafe).
                if spec.stages.len() > 1 {
                    spec.stages[0].green_s += *tweak_s as f64;
                    spec.stages[1].green_s -= *tweak_s as f64;
                }
                if !stale {
                    version += 1;
                }
                let mut d = PlanDeployment {
                    version: WIRE_VERSION,
                    region: "r".into(),
                    intersection: ix.id.clone(),
                    plan_version: version.max(1),
                    issued_at_ms: now.0,
                    expires_at_ms: now.0 + 3_600_000,
                    not_before_ms: now.0,
                    plan: spec,
                    operation: None,
                    key_id: String::new(),
                    signature: String::new(),
                };
                if *forge {
                    Signer25519::from_seed("centre-1", [3; 32]).sign(&mut d);
                } else {
                    centre().sign(&mut d);
                }
                let _ = cab.on_plan(now, &serde_json::to_vec(&d).unwrap());
            }
            Op::Cmd(k) => {
                seq += 1;
                let action = match k {
                    0 => CommandAction::HoldStage {
                        stage: ix.stages[seq as usize % ix.stages.len()].id.clone(),
                    },
                    1 => CommandAction::Release,
                    2 => CommandAction::AllRed,
                    3 => CommandAction::FlashingYellow,
                    4 => CommandAction::Rollback,
                    _ => CommandAction::ResetFault,
                };
                let mut c = Command {
                    version: WIRE_VERSION,
                    region: "r".into(),
                    intersection: ix.id.clone(),
                    seq,
                    issued_at_ms: now.0,
                    expires_at_ms: now.0 + 60_000,
                    operator: "prop".into(),
                    action,
                    key_id: String::new(),
                    signature: String::new(),
                };
                centre().sign(&mut c);
                let _ = cab.on_command(now, &serde_json::to_vec(&c).unwrap());
            }
            Op::Detectors(p) => pattern = *p,
        }
        let (colours, _) = cab.tick(now, &vec![false; ndet]);
        audit.see(now, &colours)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn cabinet_outputs_are_always_safe(ops in proptest::collection::vec((prop_oneof![0u32..10_000, 0u32..200_000], op()), 1..12), pick in 0usize..10_000) {
        let nets = networks();
        let all: Vec<(usize, usize)> = nets.iter().enumerate().flat_map(|(n, net)| {
            net.intersections.iter().enumerate().filter(|(_, ix)| !ix.plans.is_empty()).map(move |(i, _)| (n, i))
        }).collect();
        let (n, i) = all[pick % all.len()];
        let local = if pick % 3 == 0 { LocalMode::Actuated } else { LocalMode::Schedule };
        let r = run(&nets[n], i, &ops, local);
        prop_assert!(r.is_ok(), "{} {}: {}", nets[n].name, nets[n].intersections[i].id, r.unwrap_err());
    }
}
