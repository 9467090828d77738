//! Random edits of the shipped files never crash the loaders, and every problem they cause is
//! reported with a line and a message.
//!
//! Each shipped file (network, demand or plan) gets a few random edits of the kinds people
//! make: delete or duplicate a line, change a number or a string, rename a key, cut the file
//! short, insert a stray line. The edited text is loaded the way `greenwave check` loads it;
//! the result may be a success or a list of diagnostics, each with a line number and a
//! non-empty message; it may never be a panic.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use intersections::load::{self, FileKind};
use intersections::Diagnostics;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

#[derive(Clone, Debug)]
enum Edit {
    DeleteLine(usize),
    DuplicateLine(usize),
    /// Replace the n-th number with a value.
    Number(usize, &'static str),
    /// Replace the n-th string's contents with a value, or with the m-th other string.
    Text(usize, Result<usize, &'static str>),
    /// Rename the n-th key to a value, or to the m-th other key of the file.
    Key(usize, Result<usize, &'static str>),
    /// Keep this share (per mille) of the text.
    Truncate(u16),
    /// Insert a stray line before the n-th line.
    Garbage(usize, &'static str),
}

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "3",
    "7",
    "8",
    "29",
    "30",
    "180",
    "181",
    "300",
    "301",
    "0.5",
    "3.3",
    "-0.0",
    "1e300",
    "-1e300",
    "inf",
    "-inf",
    "nan",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "1.7976931348623157e308",
    "0x10",
    "1_000",
    "\"5\"",
    "[]",
    "true",
];

const TEXTS: &[&str] = &[
    "",
    "X",
    "network",
    "demand",
    "plans",
    "vehicle",
    "pedestrian",
    "permissive",
    "stop-line",
    "exit",
    "priority",
    "left",
    "00:00",
    "24:00",
    "07:60",
    "7:00",
    "single.toml",
    "../networks/single.toml",
    "missing.toml",
    "ünïcødé",
    "a b",
    "\\u0000",
    "\\\"",
];

const GARBAGE: &[&str] = &[
    "[[",
    "]]",
    "= =",
    "x = ",
    "x = 1",
    "kind = \"plans\"",
    "[intersections]",
    "[[intersections]]",
    "[[intersections.plans]]",
    "[[intersections.stages]]",
    "[[links]]",
    "[[turning]]",
    "[[entries]]",
    "[safety]",
    "[[nodes]]\nid = \"N\"\nx_m = 0\ny_m = 0",
    "stages = [",
    "\"\"\"",
    "'",
    "\u{0}",
    "\u{feff}",
    "# just a comment",
    "ratios = { X = 1 }",
    "groups = [\"A\", \"A\"]",
    "lanes = [0, 0, 99]",
    "cycle_s = 1e400",
];

fn edit() -> impl Strategy<Value = Edit> {
    let any_idx = 0usize..100_000;
    prop_oneof![
        1 => any_idx.clone().prop_map(Edit::DeleteLine),
        1 => any_idx.clone().prop_map(Edit::DuplicateLine),
        3 => (any_idx.clone(), prop::sample::select(NUMBERS)).prop_map(|(n, v)| Edit::Number(n, v)),
        2 => (
            any_idx.clone(),
            prop_oneof![
                any_idx.clone().prop_map(Ok),
                prop::sample::select(TEXTS).prop_map(Err)
            ]
        )
            .prop_map(|(n, v)| Edit::Text(n, v)),
        2 => (
            any_idx.clone(),
            prop_oneof![
                any_idx.clone().prop_map(Ok),
                prop::sample::select(&["x", "id2", "Kind", "", "1"][..]).prop_map(Err)
            ]
        )
            .prop_map(|(n, v)| Edit::Key(n, v)),
        1 => (0u16..1000).prop_map(Edit::Truncate),
        1 => (any_idx, prop::sample::select(GARBAGE)).prop_map(|(n, g)| Edit::Garbage(n, g)),
    ]
}

/// Byte ranges of the numbers, the string contents and the keys of a TOML text (a rough
/// lexer: enough to aim edits, not to parse).
#[derive(Default)]
struct Tokens {
    numbers: Vec<(usize, usize)>,
    strings: Vec<(usize, usize)>,
    keys: Vec<(usize, usize)>,
}

fn tokens(text: &str) -> Tokens {
    let b = text.as_bytes();
    let mut t = Tokens::default();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i < b.len() && b[i] == b'"' {
                    t.strings.push((start, i));
                }
                i += 1;
            }
            c if c.is_ascii_digit()
                || ((c == b'-' || c == b'+')
                    && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || matches!(b[i], b'.' | b'_' | b'-' | b'+' | b':'))
                {
                    i += 1;
                }
                t.numbers.push((start, i));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'-')) {
                    i += 1;
                }
                let mut j = i;
                while j < b.len() && b[j] == b' ' {
                    j += 1;
                }
                if j < b.len() && b[j] == b'=' && b.get(j + 1) != Some(&b'=') {
                    t.keys.push((start, i));
                }
            }
            _ => i += 1,
        }
    }
    t
}

fn replace(text: &str, (a, b): (usize, usize), with: &str) -> String {
    format!("{}{with}{}", &text[..a], &text[b..])
}

fn apply(text: &str, e: &Edit) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let t = tokens(text);
    match e {
        Edit::DeleteLine(n) => {
            let k = n % lines.len();
            lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != k)
                .map(|(_, l)| *l)
                .collect()
        }
        Edit::DuplicateLine(n) => {
            let k = n % lines.len();
            let mut out = String::new();
            for (i, l) in lines.iter().enumerate() {
                out.push_str(l);
                if i == k {
                    if !l.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push_str(l);
                }
            }
            out
        }
        Edit::Number(n, v) if !t.numbers.is_empty() => {
            replace(text, t.numbers[n % t.numbers.len()], v)
        }
        Edit::Text(n, v) if !t.strings.is_empty() => {
            let with = match v {
                Ok(m) => {
                    let (a, b) = t.strings[m % t.strings.len()];
                    &text[a..b]
                }
                Err(s) => s,
            };
            replace(text, t.strings[n % t.strings.len()], with)
        }
        Edit::Key(n, v) if !t.keys.is_empty() => {
            let with = match v {
                Ok(m) => {
                    let (a, b) = t.keys[m % t.keys.len()];
                    &text[a..b]
                }
                Err(s) => s,
            };
            replace(text, t.keys[n % t.keys.len()], with)
        }
        Edit::Truncate(per_mille) => {
            let mut cut = text.len() * usize::from(*per_mille) / 1000;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text[..cut].to_string()
        }
        Edit::Garbage(n, g) => {
            let k = n % (lines.len() + 1);
            let mut out: String = lines[..k].concat();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(g);
            out.push('\n');
            out.push_str(&lines[k..].concat());
            out
        }
        _ => text.to_string(),
    }
}

/// A copy of the shipped folder, where edited plan files are written so that their relative
/// `network` paths resolve as in the original (the loaders read plan files from disk).
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("greenwave-file-edits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (f, _) in common::shipped_files() {
            std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
        }
        dir
    })
}

/// Load an edited text the way `greenwave check` would load the original file.
fn load(original: &Path, text: &str) -> Result<(), Diagnostics> {
    let name = original.display().to_string();
    match load::kind_of(&name, text)? {
        FileKind::Network => load::network_from_str(&name, text).map(|_| ()),
        FileKind::Demand => load::demand_from_str(original, text).map(|_| ()),
        FileKind::Plans => {
            let f = scratch().join(format!(
                "edited-{}.toml",
                std::thread::current()
                    .name()
                    .unwrap_or("t")
                    .replace("::", "-")
            ));
            std::fs::write(&f, text).unwrap();
            load::load_plans(&f).map(|_| ())
        }
    }
}

fn check(original: &Path, text: &str) -> Result<bool, String> {
    match load(original, text) {
        Ok(()) => Ok(true),
        Err(d) => {
            if d.0.is_empty() {
                return Err("rejected without a diagnostic".into());
            }
            for x in &d.0 {
                if x.line.is_none() || x.message.trim().is_empty() {
                    return Err(format!(
                        "diagnostic without a line or a message: {x:?}\nall:\n{d}"
                    ));
                }
            }
            Ok(false)
        }
    }
}

const CASES_PER_FILE: u32 = 64;

#[test]
fn edited_files_load_or_fail_with_located_errors() {
    let mut outcomes = (0, 0);
    for (file, _) in common::shipped_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            check(&file, &text),
            Ok(true),
            "{} as shipped",
            file.display()
        );
        let config = Config {
            cases: CASES_PER_FILE,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
        let counts = std::cell::Cell::new((0, 0));
        let result = runner.run(&prop::collection::vec(edit(), 1..=3), |edits| {
            let edited = edits.iter().fold(text.clone(), |t, e| apply(&t, e));
            let ok = check(&file, &edited)
                .map_err(|e| TestCaseError::fail(format!("{e}\nedited text:\n{edited}")))?;
            let (a, r) = counts.get();
            counts.set(if ok { (a + 1, r) } else { (a, r + 1) });
            Ok(())
        });
        if let Err(e) = result {
            panic!("{}: {e}", file.display());
        }
        outcomes.0 += counts.get().0;
        outcomes.1 += counts.get().1;
    }
    // Most edits break something; some are harmless (a comment, a duplicated blank line).
    assert!(outcomes.1 > outcomes.0, "{outcomes:?}");
    assert!(outcomes.0 > 0, "{outcomes:?}");
}

/// Each kind of edit on a small file, exhaustively over positions: every line deleted, every
/// line duplicated, every number, string and key replaced, every truncation point by line.
#[test]
fn every_single_edit_of_single_toml() {
    let file = common::networks_dir().join("single.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines = text.lines().count();
    let t = tokens(&text);
    let mut edits = Vec::new();
    for n in 0..lines {
        edits.push(Edit::DeleteLine(n));
        edits.push(Edit::DuplicateLine(n));
        edits.push(Edit::Garbage(n, "[["));
        edits.push(Edit::Truncate((n * 1000 / lines) as u16));
    }
    for n in 0..t.numbers.len() {
        edits.push(Edit::Number(n, "-1"));
        edits.push(Edit::Number(n, "nan"));
        edits.push(Edit::Number(n, "1e300"));
    }
    for n in 0..t.strings.len() {
        edits.push(Edit::Text(n, Err("")));
        edits.push(Edit::Text(n, Ok(n + 1)));
    }
    for n in 0..t.keys.len() {
        edits.push(Edit::Key(n, Err("x")));
    }
    let mut rejected = 0;
    for e in &edits {
        let edited = apply(&text, e);
        match check(&file, &edited) {
            Ok(true) => {}
            Ok(false) => rejected += 1,
            Err(why) => panic!("{e:?}: {why}"),
        }
    }
    assert!(rejected > edits.len() / 2, "{rejected} of {}", edits.len());
}
