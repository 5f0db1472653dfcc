//! What kind of failure a library error is: the one classification the CLI maps to an exit
//! status (cli/exit.rs) and `run` maps to an arch's status. Errors never carry exit codes.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The request cannot be done as asked: bad flags, unreadable or foreign input, an arch
    /// this host or descriptor cannot do.
    BadInput,
    /// A kernel build failed (make, config): a finding about the tree.
    BuildFailed,
    /// A tool or the machine failed: says nothing about the kernel.
    Infra,
    /// Ctrl-C.
    Interrupted,
}
