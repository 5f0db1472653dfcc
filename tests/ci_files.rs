//! The CI files modverify ships are valid for their engines.
use std::path::Path;
use std::process::Command;

#[test]
fn nightly_pipeline_is_a_valid_github_actions_workflow() {
    let wf = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/nightly.yml");
    // check-jsonschema carries GitHub's workflow schema inside its wheel (no network).
    let o = Command::new("python3")
        .args(["-m", "check_jsonschema"])
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(&wf)
        .output()
        .expect(
            "check-jsonschema is missing: python3 -m pip install check-jsonschema (ci/test does)",
        );
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&wf).unwrap();
    for arch in ["sparc64", "alpha", "riscv64"] {
        assert!(text.contains(arch));
    }
    // It follows a kernel branch: URL and ref as inputs (mainline master by default), the
    // tree checked out once and built by every arch job.
    let wf_yaml: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let inputs = &wf_yaml["on"]["workflow_dispatch"]["inputs"];
    assert!(inputs["kernel_git"]["default"]
        .as_str()
        .unwrap()
        .contains("torvalds/linux.git"));
    assert_eq!(inputs["kernel_ref"]["default"].as_str(), Some("master"));
    assert!(wf_yaml["jobs"]["tree"].is_mapping());
    assert_eq!(wf_yaml["jobs"]["arch"]["needs"].as_str(), Some("tree"));
    assert!(text.contains("--source linux") && text.matches("git -C linux fetch").count() == 1);
    assert!(
        text.contains("modverify merge")
            && text.contains("--format junit")
            && text.contains("--format kcidb")
            && text.contains("--format html")
    );
}

/// Every arch that can be built and booted is in the nightly matrix, and nothing else is.
#[test]
fn nightly_matrix_runs_every_buildable_and_bootable_arch() {
    let wf = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/nightly.yml");
    let wf_yaml: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(&wf).unwrap()).unwrap();
    let mut matrix: Vec<String> = wf_yaml["jobs"]["arch"]["strategy"]["matrix"]["arch"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let registry = modverify::arch::ArchRegistry::load(None).unwrap();
    let mut runnable: Vec<String> = registry
        .arches
        .iter()
        .filter(|a| a.build.is_some() && a.qemu.is_some())
        .map(|a| a.name.clone())
        .collect();
    matrix.sort();
    runnable.sort();
    assert_eq!(matrix, runnable);
}

#[test]
fn ci_bisect_explains_its_usage() {
    let o = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/bisect"))
        .arg("onlyone")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("usage: ci/bisect GOOD BAD --arch NAME"));
}
