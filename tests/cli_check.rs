//! `greenwave check` exits 0 on every shipped file and 1 on every broken one, printing the
//! broken file's expected diagnostics (see `intersections/tests/broken_files.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn check(dir: &Path, files: &[PathBuf]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_greenwave"))
        .current_dir(dir)
        .arg("check")
        .args(files.iter().map(|f| f.file_name().unwrap()))
        .output()
        .expect("greenwave runs")
}

#[test]
fn check_accepts_every_shipped_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("intersections/networks");
    let files = toml_files(&dir);
    assert!(files.iter().any(|f| f.ends_with("single.toml")));
    let out = check(&dir, &files);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.contains(": ok: ")).count(),
        files.len(),
        "{stdout}"
    );
}

#[test]
fn check_rejects_every_broken_file_with_its_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("intersections/tests/broken");
    let files = toml_files(&dir);
    assert!(files.len() >= 12);
    for f in &files {
        let out = check(&dir, std::slice::from_ref(f));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", f.display());
        let want: Vec<String> = std::fs::read_to_string(f)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(str::to_string)
            .collect();
        let got: Vec<&str> = stderr.lines().collect();
        assert_eq!(got, want, "{}", f.display());
    }
    // Several files at once: still 1, and every file reported.
    let out = check(&dir, &files);
    assert_eq!(out.status.code(), Some(1));
}
