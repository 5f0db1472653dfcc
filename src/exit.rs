//! Exit statuses, in one place. `bisect-step` maps onto `git bisect run`'s contract.

/// Everything checked is fine.
pub const OK: i32 = 0;
/// Findings: a module fails (or would fail), or the export table is inconsistent.
/// Also `git bisect run`'s "bad".
pub const FINDINGS: i32 = 1;
/// The run itself could not be done: bad flags, unreadable or foreign input, broken descriptor.
pub const USAGE: i32 = 2;
/// A kernel build failed (make, config).
pub const BUILD_FAILED: i32 = 3;
/// Infrastructure failed: QEMU could not start, a tool is missing, the disk is full.
pub const INFRA: i32 = 4;
/// Interrupted by Ctrl-C (128 + SIGINT); results so far are kept.
pub const INTERRUPTED: i32 = 130;
/// `git bisect run`: this commit cannot be tested.
pub const BISECT_SKIP: i32 = 125;
/// `git bisect run` aborts the bisection on a status above 127: no commit can be tested as
/// asked (bad flags, a missing file, an arch that cannot be done).
pub const BISECT_ABORT: i32 = 128;

/// The exit status for a library error of this kind.
pub fn code(kind: crate::failure::FailureKind) -> i32 {
    use crate::failure::FailureKind;
    match kind {
        FailureKind::BadInput => USAGE,
        FailureKind::BuildFailed => BUILD_FAILED,
        FailureKind::Infra => INFRA,
        FailureKind::Interrupted => INTERRUPTED,
    }
}
