//! JUnit XML: one testsuite per arch; test cases for build, static export table, boot and
//! running export table, and one per module — failures carry the kernel's own messages.
use crate::results::{ArchStatus, RunResults};
use crate::verdict::Outcome;
use std::fmt::Write;

pub(crate) fn esc(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

struct Case {
    name: String,
    seconds: f64,
    failure: Option<(String, String)>,
    /// The failure is the run's, not the kernel's (QEMU or a tool): JUnit's `<error>`, a
    /// test that could not run, rather than `<failure>`, a test that found something.
    error: bool,
    skipped: Option<String>,
    /// Notes for `<system-out>` (the options Kconfig dropped from a build that passed).
    out: String,
    /// The failed tries of a case that also passed (nextest's and Surefire's
    /// `<flakyFailure>`: the case passes, its failed tries recorded).
    flaky: Vec<(String, String)>,
    /// The later tries of a failure that reproduced (Surefire's `<rerunFailure>`).
    reruns: Vec<(String, String)>,
}

pub fn junit(r: &RunResults) -> String {
    let mut o = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"modverify\">\n",
    );
    for a in r.arches() {
        let arch = a.arch.as_str();
        let mut cases = Vec::new();
        // Bad input fails the run where it was asked: a nightly whose source or patch is
        // missing has tested nothing, and must not read as skipped.
        let build_failure = match a.status {
            ArchStatus::BuildFailed => Some("build failed"),
            ArchStatus::BadInput => Some("bad input: nothing was tested"),
            ArchStatus::Running
            | ArchStatus::Ok
            | ArchStatus::Findings
            | ArchStatus::Infra
            | ArchStatus::Skipped
            | ArchStatus::NotRun
            | ArchStatus::Interrupted => None,
        };
        // A tool missing before the build: nothing about the kernel is known.
        let build_error = a.status == ArchStatus::Infra
            && a.build.is_none()
            && a.check.is_none()
            && a.boot.is_none();
        let build_failure =
            build_failure.or(build_error.then_some("infrastructure failed: nothing was tested"));
        cases.push(Case {
            name: "build".into(),
            seconds: a.seconds.build_s.unwrap_or(0.0),
            failure: build_failure.map(|f| (f.into(), joined(&a.reasons, "\n"))),
            error: build_error,
            skipped: (a.build.is_none() && build_failure.is_none())
                .then(|| joined(&a.reasons, "; ")),
            out: super::results::causes(a)
                .into_iter()
                .filter(|c| c.starts_with("build: "))
                .collect::<Vec<_>>()
                .join("\n"),
            flaky: vec![],
            reruns: vec![],
        });
        if a.check.is_some() {
            let probs = a.export_table_errors();
            cases.push(Case {
                error: false,
                name: "export-table.static".into(),
                seconds: a.seconds.check_s.unwrap_or(0.0),
                failure: (!probs.is_empty())
                    .then(|| ("export table inconsistent".into(), probs.join("\n"))),
                skipped: None,
                out: String::new(),
                flaky: vec![],
                reruns: vec![],
            });
        }
        if let Some(boot) = &a.boot {
            let infrastructure = boot
                .boot_failure
                .as_ref()
                .is_some_and(|f| f.kind == crate::qemu::BootFailureKind::Infrastructure);
            cases.push(Case {
                name: "boot".into(),
                seconds: a.seconds.boot_s.unwrap_or(0.0),
                error: infrastructure,
                failure: boot
                    .boot_failure
                    .as_ref()
                    .map(|f| {
                        let what = if infrastructure {
                            "boot could not run"
                        } else {
                            "boot failed"
                        };
                        (what.into(), f.text.clone())
                    })
                    .or_else(|| {
                        (!boot.done).then(|| ("no done from the guest".into(), String::new()))
                    }),
                skipped: None,
                out: String::new(),
                flaky: vec![],
                reruns: vec![],
            });
            if let Some(t) = &boot.export_table {
                let diffs: Vec<&str> = t.differences.iter().map(|d| d.detail.as_str()).collect();
                cases.push(Case {
                    error: false,
                    name: "export-table.runtime".into(),
                    seconds: 0.0,
                    failure: (!t.equal).then(|| {
                        (
                            "running export table differs from the ELF".into(),
                            diffs.join("\n"),
                        )
                    }),
                    skipped: None,
                    out: String::new(),
                    flaky: vec![],
                    reruns: vec![],
                });
            }
            for m in &boot.modules {
                let mut failure = None;
                let mut skipped = None;
                match m.verdict.outcome() {
                    // Never tried (the guest died first): the boot case carries the failure.
                    Outcome::Miss => {
                        skipped = Some(format!(
                            "not run: {}",
                            m.not_run_reason.as_deref().unwrap_or("no result arrived")
                        ))
                    }
                    Outcome::Shadowed => {
                        skipped = Some(format!(
                            "shadowed: {}",
                            m.not_run_reason
                                .as_deref()
                                .unwrap_or("another file of this name is the one that loads")
                        ))
                    }
                    Outcome::Absent => {
                        skipped = Some(format!(
                            "no device: linked, its init returned {} (what it drives is not in this machine)",
                            m.errno_name.as_deref().unwrap_or("an absent-hardware errno")
                        ))
                    }
                    Outcome::Fail | Outcome::Error | Outcome::Skip => {
                        failure = Some((
                            format!(
                                "{}{}",
                                m.verdict.as_str(),
                                m.symbol
                                    .as_ref()
                                    .map(|s| format!(" ({s})"))
                                    .unwrap_or_default()
                            ),
                            m.kernel_messages.join("\n"),
                        ))
                    }
                    Outcome::Pass if m.unload_crashed => {
                        failure = Some((
                            "unloading it took the kernel down".into(),
                            m.console_excerpt.join("\n"),
                        ))
                    }
                    Outcome::Pass if m.unload_failed() => {
                        failure = Some((
                            "unload failed".into(),
                            format!(
                                "errno {}",
                                m.unload_errno.map_or("null".into(), |e| e.to_string())
                            ),
                        ))
                    }
                    Outcome::Pass if !m.agrees => {
                        failure = Some((
                            format!(
                                "loaded, but the static check predicted {}",
                                m.predicted.map_or("?", |p| p.as_str())
                            ),
                            String::new(),
                        ))
                    }
                    // A verdict alone is never flaky (the tries are read below).
                    Outcome::Pass | Outcome::Flaky => {}
                }
                // Tries that disagree: the case passes with its failed tries; tries that agree:
                // the failure stands with its reruns.
                let try_failure = |v: crate::verdict::RuntimeVerdict, msgs: &[String], n: usize| {
                    (format!("{} (try {n})", v.as_str()), msgs.join("\n"))
                };
                let tries: Vec<(crate::verdict::RuntimeVerdict, &[String])> =
                    std::iter::once((m.verdict, m.kernel_messages.as_slice()))
                        .chain(
                            m.retries
                                .iter()
                                .map(|t| (t.verdict, t.kernel_messages.as_slice())),
                        )
                        .collect();
                let mut flaky = Vec::new();
                let mut reruns = Vec::new();
                if m.flaky() {
                    failure = None;
                    skipped = None;
                    flaky = tries
                        .iter()
                        .enumerate()
                        .filter(|(_, (v, _))| v.failed())
                        .map(|(i, (v, msgs))| try_failure(*v, msgs, i + 1))
                        .collect();
                } else if m.reproduced() {
                    if let Some((msg, _)) = failure.as_mut() {
                        msg.push_str(&format!(" (reproduced in {} tries)", tries.len()));
                    }
                    reruns = tries
                        .iter()
                        .enumerate()
                        .skip(1)
                        .map(|(i, (v, msgs))| try_failure(*v, msgs, i + 1))
                        .collect();
                }
                cases.push(Case {
                    error: false,
                    name: format!("module.{}", m.name),
                    seconds: m.load_micros.map_or(0.0, |u| u as f64) / 1e6,
                    failure,
                    skipped,
                    out: String::new(),
                    flaky,
                    reruns,
                });
            }
        } else if let Some(check) = &a.check {
            for m in &check.modules {
                cases.push(Case {
                    error: false,
                    name: format!("module.{}", m.name),
                    seconds: 0.0,
                    failure: m.failed().then(|| {
                        (
                            format!("{} (static prediction)", m.verdict.as_str()),
                            m.kernel_messages().join("\n"),
                        )
                    }),
                    skipped: None,
                    out: String::new(),
                    flaky: vec![],
                    reruns: vec![],
                });
            }
        }
        let errors = cases
            .iter()
            .filter(|c| c.failure.is_some() && c.error)
            .count();
        let failures = cases.iter().filter(|c| c.failure.is_some()).count() - errors;
        let skipped = cases.iter().filter(|c| c.skipped.is_some()).count();
        let total: f64 = cases.iter().map(|c| c.seconds).sum();
        let _ = writeln!(o, "  <testsuite name=\"modverify.{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{total:.3}\">", esc(arch), cases.len());
        for c in cases {
            let _ = write!(
                o,
                "    <testcase classname=\"modverify.{}\" name=\"{}\" time=\"{:.3}\"",
                esc(arch),
                esc(&c.name),
                c.seconds
            );
            let tries = |tag: &str, list: &[(String, String)]| -> String {
                list.iter()
                    .map(|(msg, body)| {
                        format!(
                            "\n      <{tag} message=\"{}\" type=\"module\"><system-out>{}</system-out></{tag}>",
                            esc(msg),
                            esc(body)
                        )
                    })
                    .collect()
            };
            match (c.failure, c.skipped) {
                (Some((msg, body)), _) => {
                    let tag = if c.error { "error" } else { "failure" };
                    let _ = writeln!(
                        o,
                        ">\n      <{tag} message=\"{}\">{}</{tag}>{}\n    </testcase>",
                        esc(&msg),
                        esc(&body),
                        tries("rerunFailure", &c.reruns)
                    );
                }
                (None, None) if !c.flaky.is_empty() => {
                    let _ = writeln!(o, ">{}\n    </testcase>", tries("flakyFailure", &c.flaky));
                }
                (None, Some(why)) => {
                    let _ = writeln!(
                        o,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        esc(&why)
                    );
                }
                _ if !c.out.is_empty() => {
                    let _ = writeln!(
                        o,
                        ">\n      <system-out>{}</system-out>\n    </testcase>",
                        esc(&c.out)
                    );
                }
                _ => o.push_str("/>\n"),
            }
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}

/// An arch's reasons as one text, each as results.json writes it (`build: …`).
fn joined(reasons: &[crate::results::Reason], sep: &str) -> String {
    reasons
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}
