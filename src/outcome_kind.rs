//! The outcome vocabulary every report speaks, for a static prediction (`check`) and a
//! kernel's verdict (`boot`) alike: one home below both, so neither imports the other for it.

/// What a module's verdict is to a report, decided once: passed, failed, the kernel died
/// or hung on it, failed only because a module it needs did, or never tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// Linked; what it drives is not in the machine, so there was nothing more to test.
    Absent,
    Fail,
    Error,
    Skip,
    Miss,
    /// Another file of the same name is the one that loads: this one is not tried.
    Shadowed,
    /// Tried again in a fresh guest, and the tries disagree: no verdict stands.
    Flaky,
}

impl Outcome {
    /// KCIDB v5 test status.
    pub fn kcidb(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Absent => "SKIP",
            Outcome::Fail => "FAIL",
            Outcome::Error => "ERROR",
            Outcome::Skip => "SKIP",
            Outcome::Miss => "MISS",
            Outcome::Shadowed => "SKIP",
            // KCIDB has no flaky: it passes, as nextest has it, with its failed try in the
            // log excerpt.
            Outcome::Flaky => "PASS",
        }
    }
}
