//! Writing to stdout and stderr without a panic when the reader has gone.
//!
//! `modverify check … | head` closes the pipe after a line; Rust's `println!` then panics
//! ("failed printing to stdout: Broken pipe", exit 101). Here a closed stream is noted and
//! written to no more: the command finishes what it was doing (results saved, QEMU reaped)
//! and exits with its own status, so `set -o pipefail` still sees the verdict.
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

fn write(gone: &AtomicBool, w: &mut dyn Write, args: fmt::Arguments) {
    if gone.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = w.write_fmt(args).and_then(|()| w.flush()) {
        // A reader that left (EPIPE) or any other failure to write: nothing more can be said
        // on that stream, and saying so on it is impossible. The work goes on.
        let _ = e;
        gone.store(true, Ordering::Relaxed);
    }
}

/// `print!` that never panics.
pub fn stdout(args: fmt::Arguments) {
    write(&STDOUT_GONE, &mut std::io::stdout().lock(), args)
}

/// `eprint!` that never panics.
pub fn stderr(args: fmt::Arguments) {
    write(&STDERR_GONE, &mut std::io::stderr().lock(), args)
}

/// Whether stdout's reader has gone (a pipe closed early).
pub fn stdout_gone() -> bool {
    STDOUT_GONE.load(Ordering::Relaxed)
}

/// `print!` to stdout that ends quietly on a closed pipe.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { $crate::report::out::stdout(format_args!($($t)*)) };
}

/// `println!` to stdout that ends quietly on a closed pipe.
#[macro_export]
macro_rules! outln {
    () => { $crate::report::out::stdout(format_args!("\n")) };
    ($($t:tt)*) => { $crate::report::out::stdout(format_args!("{}\n", format_args!($($t)*))) };
}

/// `eprintln!` that ends quietly on a closed pipe.
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => { $crate::report::out::stderr(format_args!("{}\n", format_args!($($t)*))) };
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_stream_is_noted_once_and_never_panics() {
        let gone = AtomicBool::new(false);
        write(&gone, &mut Closed, format_args!("a line\n"));
        assert!(gone.load(Ordering::Relaxed));
        write(&gone, &mut Closed, format_args!("another\n"));
    }
}
