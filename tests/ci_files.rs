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

/// Every arch that can be built (and booted, but for ia64: checked statically) is in the
/// nightly matrix, and nothing else is.
#[test]
fn nightly_matrix_runs_every_buildable_arch() {
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
        .filter(|a| a.build.is_some())
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

fn validate(tool: &[&str], file: &Path) {
    let o = Command::new(tool[0])
        .args(&tool[1..])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{tool:?}: {e} (ci/test installs it with pip)"));
    assert!(
        o.status.success(),
        "{} is not valid for its engine:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// GitLab CI: valid by GitLab's own schema (vendored in check-jsonschema), every buildable and
/// bootable arch in the matrix, the distribution kernel's shards taken from CI_NODE_INDEX
/// (`--shard auto` in a `parallel: N` job) and merged into one run.
#[test]
fn gitlab_template_is_valid_and_shards_by_ci_node_index() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/gitlab-ci.yml");
    validate(
        &[
            "python3",
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.gitlab-ci",
        ],
        &file,
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let y: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let mut matrix: Vec<String> = y["arch"]["parallel"]["matrix"][0]["ARCH"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    matrix.sort();
    let registry = modverify::arch::ArchRegistry::load(None).unwrap();
    let mut runnable: Vec<String> = registry
        .arches
        .iter()
        .filter(|a| a.build.is_some())
        .map(|a| a.name.clone())
        .collect();
    runnable.sort();
    assert_eq!(matrix, runnable);
    assert!(y["distribution"]["parallel"].as_u64().unwrap() > 1);
    let script = |job: &str| -> String {
        y[job]["script"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(script("distribution").contains("--shard auto --out \"debian/shard-$CI_NODE_INDEX\""));
    assert!(script("merge").contains("modverify merge debian/shard-*/results.json"));
}

/// Kubernetes: an Indexed Job valid by Kubernetes' own schema (kubernetes-validate, strict),
/// whose pods take their share from JOB_COMPLETION_INDEX (`--shard auto/N`, N = completions).
#[test]
fn kubernetes_indexed_job_is_valid_and_its_shards_are_its_completions() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/k8s-indexed-job.yaml");
    validate(&["kubernetes-validate", "--strict", "--quiet"], &file);
    let text = std::fs::read_to_string(&file).unwrap();
    let y: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(y["spec"]["completionMode"].as_str(), Some("Indexed"));
    let n = y["spec"]["completions"].as_u64().unwrap();
    assert!(text.contains(&format!("--shard auto/{n} ")), "{text}");
    assert!(text.contains("shard-$JOB_COMPLETION_INDEX"));
}
