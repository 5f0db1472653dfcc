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

impl FailureKind {
    /// An I/O error on a file the user named: missing, not readable for want of permission,
    /// a directory where a file was wanted, or not what it claims is a mistake in the request;
    /// any other failure (disk full, I/O error) is the machine's. The one home of that rule.
    pub fn of_io(e: &std::io::Error) -> FailureKind {
        match e.kind() {
            std::io::ErrorKind::NotFound
            | std::io::ErrorKind::PermissionDenied
            | std::io::ErrorKind::IsADirectory
            | std::io::ErrorKind::NotADirectory
            | std::io::ErrorKind::InvalidData
            | std::io::ErrorKind::InvalidInput => FailureKind::BadInput,
            _ => FailureKind::Infra,
        }
    }
}

/// Every error type the CLI can end with says what kind of failure it is; the CLI maps the
/// kind to an exit status in one place (`cli::exit::code`), never by hand at the call site.
pub trait Classified: std::error::Error + Send + Sync + 'static {
    fn kind(&self) -> FailureKind;
}

/// [`Classified`] for error types whose own `kind()` already says it.
macro_rules! classified_by_own_kind {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::failure::Classified for $t {
            fn kind(&self) -> $crate::failure::FailureKind {
                <$t>::kind(self)
            }
        }
    )*};
}
// Each error type's own module says it is classified (`classified_by_own_kind!(E)` there):
// this bottom layer names none of them.
pub(crate) use classified_by_own_kind;
