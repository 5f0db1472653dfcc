//! The kernel's verdict on one module, from what the guest saw (return value, errno, kernel
//! messages), and whether the static prediction agrees with it.
use super::RuntimeVerdict;
use crate::check::Verdict;
use crate::qemu::{Fate, GuestModule};

/// The symbol named in a kernel message after `marker`, up to the next space or `(`.
fn symbol_after<'a>(msg: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &msg[msg.find(marker)? + marker.len()..];
    Some(rest.split([' ', ')', '(']).next().unwrap_or(rest)).filter(|s| !s.is_empty())
}

/// What a driver's init returns when what it drives is not there (the loader's own refusals
/// were told apart before: an unknown symbol is ENOENT too, with the kernel's message).
const ABSENT_HARDWARE: &[&str] = &[
    "ENODEV",
    "ENXIO",
    "ENOENT",
    "EOPNOTSUPP",
    "ENOTSUPP",
    "ENOSYS",
    "EPROBE_DEFER",
];

/// Classifies one guest result from its return value, errno and the kernel's messages.
pub fn classify(m: &GuestModule, failed_deps: bool) -> (RuntimeVerdict, Option<String>) {
    match m.fate {
        Some(Fate::Crashed) => return (RuntimeVerdict::Crashed, None),
        Some(Fate::Hung) => return (RuntimeVerdict::Hung, None),
        None => {}
    }
    let Some(ret) = m.ret else {
        return (RuntimeVerdict::NotRun, None);
    };
    if ret == 0 {
        return (RuntimeVerdict::Loaded, None);
    }
    let msgs: Vec<&str> = m.kmsg.iter().map(|(_, t)| t.as_str()).collect();
    let find = |marker: &str| {
        msgs.iter()
            .find_map(|t| symbol_after(t, marker).map(str::to_string))
    };
    if let Some(s) = find("disagrees about version of symbol ") {
        return (RuntimeVerdict::CrcMismatch, Some(s));
    }
    if let Some(s) = find("no symbol version for ") {
        return (RuntimeVerdict::MissingVersion, Some(s));
    }
    if let Some(s) = find("module uses symbol (") {
        return (RuntimeVerdict::Namespace, Some(s));
    }
    if msgs.iter().any(|t| t.contains("version magic")) {
        return (RuntimeVerdict::BadVermagic, None);
    }
    if let Some(s) = find("Unknown symbol ") {
        return (
            if failed_deps {
                RuntimeVerdict::Skipped
            } else {
                RuntimeVerdict::UnknownSymbol
            },
            Some(s),
        );
    }
    if failed_deps {
        return (RuntimeVerdict::Skipped, None);
    }
    if m.errno_name
        .as_deref()
        .is_some_and(|e| ABSENT_HARDWARE.contains(&e))
    {
        return (RuntimeVerdict::NoDevice, None);
    }
    (RuntimeVerdict::InitFailed, None)
}

/// Whether a runtime verdict is what the static prediction said.
pub fn agrees(predicted: Verdict, runtime: RuntimeVerdict) -> bool {
    use RuntimeVerdict as R;
    match predicted {
        // The loader accepted it; what its init then did is a failure of its own, not of the
        // prediction (which is about the loader's checks).
        // Skipped: a module it needs failed at run time; that module's own verdict says
        // whether its failure was predicted, this one's linkage is not in question.
        Verdict::Ok => matches!(
            runtime,
            R::Loaded | R::InitFailed | R::NoDevice | R::Crashed | R::Hung | R::Skipped
        ),
        Verdict::CrcMismatch => runtime == R::CrcMismatch,
        Verdict::MissingVersion => {
            matches!(runtime, R::MissingVersion | R::InitFailed | R::NoDevice)
        }
        // A GPL-only export hidden from a proprietary module is just "Unknown symbol" to the kernel.
        Verdict::UnknownSymbol | Verdict::GplOnly => {
            matches!(runtime, R::UnknownSymbol | R::GplOnly)
        }
        Verdict::Namespace => runtime == R::Namespace,
        Verdict::BadVermagic => runtime == R::BadVermagic,
        Verdict::DependencyFailed => matches!(runtime, R::Skipped | R::UnknownSymbol),
        Verdict::DuplicateExport | Verdict::Malformed | Verdict::WrongArch => {
            !matches!(runtime, R::Loaded)
        }
        Verdict::Shadowed => runtime == R::Shadowed,
    }
}
