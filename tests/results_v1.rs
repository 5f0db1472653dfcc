//! results.json as written before the typed results model (schema `modverify.results/1`,
//! saved in tests/fixtures): still read, and rendered byte for byte as the string-keyed
//! renderers rendered it (the golden files were written by the binary at dbe1ed5).
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
    assert!(
        text(&o).contains("4 regressions, 1 fixes"),
        "{}",
        text(&o)
    );
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let want: Value = serde_json::from_str(&fixture("merged-v1.json")).unwrap();
    assert_eq!(got, want);
}
