//! Shared by the integration tests: the shipped files, found by globbing
//! `intersections/networks/` so that every network added there is covered.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use intersections::load::{self, FileKind};
use intersections::model::Network;

/// The folder of shipped networks, demand and plan files.
pub fn networks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("networks")
}

/// Every shipped `.toml` file with its kind, sorted by name.
pub fn shipped_files() -> Vec<(PathBuf, FileKind)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(networks_dir())
        .expect("intersections/networks exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("readable shipped file");
            let kind = load::kind_of(&f.display().to_string(), &text)
                .unwrap_or_else(|d| panic!("shipped file without a kind:\n{d}"));
            (f, kind)
        })
        .collect()
}

/// Every shipped network, checked; loaded once per test binary (checking the large networks
/// takes a while in debug builds).
pub fn shipped_networks() -> &'static [(PathBuf, Network)] {
    static NETS: OnceLock<Vec<(PathBuf, Network)>> = OnceLock::new();
    NETS.get_or_init(|| {
        let out: Vec<(PathBuf, Network)> = shipped_files()
            .into_iter()
            .filter(|(_, k)| *k == FileKind::Network)
            .map(|(f, _)| {
                let net =
                    load::load_network(&f).unwrap_or_else(|d| panic!("shipped network:\n{d}"));
                (f, net)
            })
            .collect();
        assert!(
            out.iter().any(|(f, _)| f.ends_with("single.toml")),
            "single.toml is shipped"
        );
        out
    })
}

/// The file name of a path, for messages.
pub fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Set a detector's occupancy at `now` as a detector card would: a rising edge counts a
/// vehicle and records `last_on`, a falling edge records `last_off`.
pub fn set_occupied(
    st: &mut intersections::field::DetectorState,
    now: intersections::Ms,
    occ: bool,
) {
    if occ != st.occupied {
        st.occupied = occ;
        if occ {
            st.count += 1;
            st.last_on = Some(now);
        } else {
            st.last_off = Some(now);
        }
    }
}
