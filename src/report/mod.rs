//! Turning results into things people and programs read. The only layer that formats.
pub mod diff;
pub mod html;
pub mod json;
pub mod out;
pub mod junit;
pub mod kcidb;
pub mod progress;
pub mod results;
pub mod table;

/// "N loaded, M failed" and ", K not run" when some were never tried: one wording for the
/// boot table and the run table.
pub fn load_counts(s: &crate::boot::BootSummary) -> String {
    format!(
        "{} loaded, {} failed{}{}{}",
        s.loaded,
        s.failed,
        if s.flaky > 0 {
            format!(", {} flaky", s.flaky)
        } else {
            String::new()
        },
        if s.not_run > 0 {
            format!(", {} not run", s.not_run)
        } else {
            String::new()
        },
        match s.by_verdict.get(&crate::verdict::RuntimeVerdict::Shadowed) {
            Some(n) => format!(", {n} shadowed"),
            None => String::new(),
        }
    )
}
