//! Broken files and the exact diagnostics they produce.
//!
//! Each file in `tests/broken/` is broken on purpose in one way (its first line says how) and
//! ends with `# expect: ` comment lines: every diagnostic the loader must report, in order,
//! as `greenwave check` prints it (`file:line: field.path: message`, the file by its name).

use std::path::{Path, PathBuf};

use intersections::load;

fn broken_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn expected(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(str::to_string)
        .collect()
}

fn name(p: &str) -> String {
    Path::new(p)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The diagnostics of a file as `check` prints them when run in `tests/broken/`: file names,
/// and paths in messages relative to that folder.
fn diagnostics(path: &Path) -> Vec<String> {
    let dir = format!("{}/", path.parent().unwrap().display());
    match load::load_any(path) {
        Ok(_) => Vec::new(),
        Err(d) => {
            d.0.into_iter()
                .map(|mut x| {
                    x.file = name(&x.file);
                    x.message = x.message.replace(&dir, "");
                    x.to_string()
                })
                .collect()
        }
    }
}

#[test]
fn every_broken_file_fails_with_exactly_its_expected_diagnostics() {
    let files = broken_files();
    assert!(files.len() >= 12, "only {} broken files", files.len());
    let mut wrong = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let want = expected(&text);
        assert!(!want.is_empty(), "{}: no `# expect:` lines", f.display());
        let got = diagnostics(f);
        if got != want {
            wrong.push(format!(
                "{}:\n  expected:\n    {}\n  got:\n    {}",
                f.display(),
                want.join("\n    "),
                got.join("\n    ")
            ));
        }
        for line in &got {
            assert!(!line.contains('\n'), "one line per problem: {line:?}");
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The broken files differ from a valid shipped file only where their comment says: the
/// expected lines point into the file, at lines that exist.
#[test]
fn expected_lines_point_into_the_file() {
    for f in broken_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let n = text.lines().count();
        let file = name(&f.display().to_string());
        for e in expected(&text) {
            let rest = e
                .strip_prefix(&format!("{file}:"))
                .unwrap_or_else(|| panic!("{file}: expectation names another file: {e}"));
            let line: usize = rest.split(':').next().unwrap().parse().unwrap_or(0);
            assert!(line >= 1 && line <= n, "{file}: line {line} of {n}: {e}");
        }
    }
}
