//! results.json as written before the typed results model (schema `modverify.results/1`,
//! saved in tests/fixtures): still read, and rendered byte for byte as the string-keyed
//! renderers rendered it (the golden files were written by the binary at dbe1ed5), except one
//! deliberate change: since 3e851fe the HTML colours an arch's name from its status, so an arch
//! whose status is not ok has a red name cell; and one addition: a failed build's reasons (its
//! error lines) are in the HTML's causes and in KCIDB's build `log_excerpt`. And one fix: a
//! module the check passes with a warning (akcipher, static only) was ranked with the
//! disagreements and marked `data-bad` because its cell had a detail line; a disagreement is
//! now the module's own `agrees: false`, so it sorts with the modules that load. `merge`
//! writes the schema it writes (`modverify.results/2`), whatever version it read.
mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

const FIXTURE: &str = "tests/fixtures/results-v1.json";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new("tests/fixtures").join(name)).unwrap()
}

#[test]
fn every_report_format_of_a_v1_file_is_unchanged() {
    for (args, golden) in [
        (vec![], "results-v1.table.txt"),
        (vec!["--format", "junit"], "results-v1.junit.xml"),
        (
            vec!["--format", "kcidb", "--origin", "lab"],
            "results-v1.kcidb.json",
        ),
        (vec!["--format", "html"], "results-v1.html"),
    ] {
        let mut all = vec!["report", FIXTURE];
        all.extend(args);
        let o = modverify(&all);
        assert!(o.status.success(), "{all:?}: {}", text(&o));
        let got = String::from_utf8_lossy(&o.stdout);
        let want = fixture(golden);
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(got.lines().count().min(want.lines().count()));
            panic!(
                "{golden} differs at line {}:\n got: {:?}\nwant: {:?}",
                line + 1,
                got.lines().nth(line),
                want.lines().nth(line)
            );
        }
    }
}

#[test]
fn merge_against_a_v1_baseline_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("merged.json");
    let o = modverify(&[
        "merge",
        FIXTURE,
        "--baseline",
        "tests/fixtures/baseline-v1.json",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("4 regressions, 1 fixes"), "{}", text(&o));
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let want: Value = serde_json::from_str(&fixture("merged-v1.json")).unwrap();
    // Everything the string-keyed merge wrote is there, unchanged; what is added are the
    // keys this v1 file predates (written with their defaults), and nothing else.
    let mut added = Vec::new();
    contains(&got, &want, "", &mut added);
    added.sort();
    added.dedup();
    assert_eq!(added, ["/boot/summary/not_run", "/check/exports/verified"]);
}

/// Whether `got` holds every key and value of `want`; keys only in `got` are collected
/// (without the arch, which varies).
fn contains(got: &Value, want: &Value, path: &str, added: &mut Vec<String>) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, gv) in g {
                let p = if path == "/arches" {
                    String::new()
                } else {
                    format!("{path}/{k}")
                };
                match w.get(k) {
                    Some(wv) => contains(gv, wv, &p, added),
                    None => added.push(p),
                }
            }
            for k in w.keys() {
                assert!(g.contains_key(k), "{path}/{k} is missing");
            }
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            for (gv, wv) in g.iter().zip(w) {
                contains(gv, wv, path, added);
            }
        }
        _ => assert_eq!(got, want, "at {path}"),
    }
}

/// The library reads the saved file into the typed model, and what it writes reads back
/// the same.
#[test]
fn the_typed_model_reads_and_round_trips_a_v1_file() {
    use modverify::results::{ArchStatus, RunResults, RunStatus, RuntimeVerdict, Verdict};
    let r = RunResults::from_json(&fixture("results-v1.json")).unwrap();
    assert_eq!(r.status, RunStatus::Complete);
    assert_eq!(r.arches["alpha"].status, ArchStatus::BuildFailed);
    let sparc = &r.arches["sparc64"];
    let check = sparc.check.as_ref().unwrap();
    let bad = check
        .modules
        .iter()
        .find(|m| m.verdict == Verdict::CrcMismatch)
        .unwrap();
    assert_eq!(bad.problems[0].module_crc, Some(0x1234_5678));
    assert_eq!(check.exports.problems[0].expected_crc, Some(0x1111));
    let boot = sparc.boot.as_ref().unwrap();
    assert!(boot
        .modules
        .iter()
        .any(|m| m.verdict == RuntimeVerdict::Hung));
    assert_eq!(r.baseline.as_ref().unwrap().regressions.len(), 44);

    let text = serde_json::to_string(&r).unwrap();
    let again = RunResults::from_json(&text).unwrap();
    assert_eq!(serde_json::to_string(&again).unwrap(), text);
    // The CRCs are written as they were read: `0x%08x` strings.
    assert!(text.contains("\"module_crc\":\"0x12345678\""), "{text}");

    // A later schema is refused by name, not misread.
    let newer = fixture("results-v1.json").replace("modverify.results/1", "modverify.results/3");
    let e = RunResults::from_json(&newer).unwrap_err().to_string();
    assert!(e.contains("modverify.results/3"), "{e}");
}
