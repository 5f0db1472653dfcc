//! `modverify merge`: per-arch results.json files (one CI job each) into one; the shards of
//! one arch's run (`--shard K/N`, one CI job each) are joined into that run.
use super::CliError;
use super::Failure;
use crate::results::{RunResults, RunStatus};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
modverify merge sparc64/results.json alpha/results.json -o merged.json\n  \
modverify merge */results.json --baseline last-night/merged.json \\\n      \
-o merged.json\n  \
# the shards of one run (boot or run --shard 1/4 … 4/4):\n  \
modverify merge shard-*/results.json -o riscv64.json\n\
\n\
Exit status: 0 merged (and no regression against --baseline), 1 regressions, 2 bad input (an unreadable file, an arch in two files without --later-wins unless they are shards of one run, an unwritable -o).")]
pub struct MergeArgs {
    /// results.json files, one or more arches each (one CI job per arch or shard)
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// When an arch is in two files, keep the later file's (default: refuse, since one arch's
    /// results would be silently lost)
    #[arg(long)]
    pub later_wins: bool,
    /// Write here instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Compare with a previous (merged) results.json: regressions and fixes are recorded,
    /// and the exit status is 1 only if there are regressions
    #[arg(long, value_name = "RESULTS")]
    pub baseline: Option<PathBuf>,
}

pub fn run(a: MergeArgs, registry: &crate::arch::ArchRegistry) -> Result<i32, Failure> {
    let mut merged: Option<RunResults> = None;
    let mut seen: std::collections::BTreeMap<String, &PathBuf> = Default::default();
    // `--shard K/N` results of one arch are parts of one run: joined, not in conflict.
    let mut shards: std::collections::BTreeMap<String, Vec<crate::results::ArchResult>> =
        Default::default();
    for p in &a.results {
        let mut v = super::report::read_results(p)?;
        let sharded: Vec<String> = v
            .arches
            .iter()
            .filter(|(_, r)| r.boot.as_ref().is_some_and(|b| b.shard.is_some()))
            .map(|(k, _)| k.clone())
            .collect();
        for arch in sharded {
            if let Some(r) = v.arches.remove(&arch) {
                shards.entry(arch).or_default().push(r);
            }
        }
        for arch in v.arches.keys() {
            if let Some(first) = seen.insert(arch.clone(), p) {
                if !a.later_wins {
                    return Err(Failure::of(CliError::Usage(format!(
                        "{}: arch {arch} is also in {}; merge joins different arches, so one \
                         of them would be lost (pass --later-wins to keep {}'s)",
                        p.display(),
                        first.display(),
                        p.display()
                    ))));
                }
                crate::errln!(
                    "modverify merge: {arch}: {} replaces {} (--later-wins)",
                    p.display(),
                    first.display()
                );
            }
        }
        match merged.as_mut() {
            None => merged = Some(v),
            Some(m) => {
                m.arches.extend(v.arches);
                m.started_unix = m.started_unix.min(v.started_unix);
                match v.status {
                    RunStatus::Complete => {}
                    RunStatus::Running | RunStatus::Interrupted => m.status = v.status,
                }
            }
        }
    }
    let mut m = merged.expect("clap requires one");
    // What merge writes is this version's, whichever version it read.
    m.schema = crate::results::RESULTS_SCHEMA.into();
    for (arch, parts) in shards {
        if let Some(first) = seen.get(&arch) {
            return Err(Failure::of(CliError::Usage(format!(
                "arch {arch}: {} holds a whole run and other files hold shards of one; \
                 merge one or the other",
                first.display()
            ))));
        }
        let boots: Vec<crate::boot::BootReport> =
            parts.iter().filter_map(|p| p.boot.clone()).collect();
        let boot = crate::boot::BootReport::join_shards(&boots)
            .map_err(|e| Failure::of(CliError::Usage(format!("arch {arch}: {e}"))))?;
        let mut joined = parts[0].clone();
        // The one rule, over the joined boot and the static check every shard wrote (the
        // same kernel's: the first one's).
        use crate::outcome::StageEnd;
        joined.status = crate::outcome::decide(&crate::outcome::Stages {
            build: if joined.build.is_some() {
                StageEnd::Done(&())
            } else {
                StageEnd::NotAsked
            },
            check: joined
                .check
                .as_ref()
                .map_or(StageEnd::NotAsked, StageEnd::Done),
            boot: StageEnd::Done(&boot),
            interrupted: parts
                .iter()
                .any(|p| p.status == crate::results::ArchStatus::Interrupted),
        });
        joined.reasons = parts.iter().flat_map(|p| p.reasons.clone()).collect();
        joined.reasons.dedup();
        joined.seconds.boot_s = parts
            .iter()
            .filter_map(|p| p.seconds.boot_s)
            .reduce(f64::max);
        joined.boot = Some(boot);
        m.arches.insert(arch, joined);
    }
    m.command = format!(
        "modverify merge {}",
        a.results
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let Some(b) = &a.baseline {
        let prev = super::report::read_results(b)?;
        let c = crate::baseline::compare(&b.display().to_string(), &prev, &m, registry);
        crate::errln!(
            "against {}: {} regressions, {} fixes",
            b.display(),
            c.regressions.len(),
            c.fixes.len()
        );
        for r in &c.regressions {
            crate::errln!(
                "  REGRESSION {} {}: {} -> {}",
                r.arch,
                r.what,
                r.before,
                r.after
            );
        }
        for f in &c.flaky {
            crate::errln!(
                "  flaky (not counted) {} {}: {} -> {}",
                f.arch,
                f.what,
                f.before,
                f.after
            );
        }
        for (line, _) in crate::report::results::drift_lines(&c) {
            crate::errln!("  {line}");
        }
        m.baseline = Some(c);
    }
    // merge exits as `run` would for the same results, so a sharded nightly fails exactly
    // when an unsharded one would.
    let statuses: Vec<_> = m.arches.values().map(|r| r.status).collect();
    let code =
        crate::outcome::exit_status(&statuses, m.baseline.as_ref().map(|c| c.regressions.len()));
    match &a.output {
        Some(p) => {
            crate::files::write_atomic(p, &m).map_err(|e| Failure::of(CliError::file(p, e)))?
        }
        None => crate::out!("{}", crate::report::json::to_string(&m) + "\n"),
    }
    Ok(code)
}
