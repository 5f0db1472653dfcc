//! Progress for long stages: one bar per arch on a terminal (one owner of the MultiProgress,
//! everything printed through it so bars never tear), plain timestamped lines otherwise.
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

pub struct Progress {
    multi: Option<MultiProgress>,
    started: Instant,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    pub fn new() -> Self {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8)));
        Progress {
            multi,
            started: Instant::now(),
        }
    }

    /// A bar (or a line printer) for one arch.
    pub fn arch(&self, arch: &str) -> ArchProgress<'_> {
        let bar = self.multi.as_ref().map(|m| {
            let b = m.add(ProgressBar::new_spinner());
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix:>8} [{elapsed_precise}] {wide_msg}",
                )
                .unwrap(),
            );
            b.set_prefix(arch.to_string());
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        ArchProgress {
            owner: self,
            arch: arch.to_string(),
            bar,
            phase: Mutex::new(String::new()),
            last_line: Mutex::new(None),
        }
    }

    /// Prints a line without tearing the bars.
    pub fn println(&self, msg: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(msg);
            }
            None => crate::errln!("[{:>6.1}s] {msg}", self.started.elapsed().as_secs_f64()),
        }
    }
}

pub struct ArchProgress<'a> {
    owner: &'a Progress,
    arch: String,
    bar: Option<ProgressBar>,
    phase: Mutex<String>,
    last_line: Mutex<Option<Instant>>,
}

impl ArchProgress<'_> {
    /// A stage message (`boot`, `load 12/35`, …); without a terminal, printed at most every 2 s
    /// unless `always`.
    pub fn stage(&self, msg: &str, always: bool) {
        match &self.bar {
            Some(b) => b.set_message(msg.to_string()),
            None => {
                let mut last = self.last_line.lock().unwrap();
                if always || last.is_none_or(|t| t.elapsed().as_secs() >= 2) {
                    *last = Some(Instant::now());
                    self.owner.println(&format!("{}: {msg}", self.arch));
                }
            }
        }
    }

    /// A stage shown on a terminal only (nothing in a log): what is under way before
    /// there is anything to report.
    pub fn hint(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_message(msg.to_string());
        }
    }

    pub fn finish(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.finish_with_message(msg.to_string()),
            None if msg.is_empty() => {}
            None => self.owner.println(&format!("{}: {msg}", self.arch)),
        }
    }
}

impl crate::kernel_build::BuildEvents for ArchProgress<'_> {
    fn phase(&self, phase: &str) {
        let mut p = self.phase.lock().unwrap();
        if *p == phase {
            return;
        }
        *p = phase.to_string();
        match &self.bar {
            Some(b) => b.set_message(format!("build: {phase}")),
            None => self
                .owner
                .println(&format!("{}: build: {phase}", self.arch)),
        }
    }

    fn progress(&self, done: u64, total: Option<u64>) {
        let phase = self.phase.lock().unwrap().clone();
        let msg = match total {
            Some(t) => format!(
                "build: {phase} {done}/{t} objects ({}%)",
                (done * 100 / t.max(1)).min(100)
            ),
            None => format!("build: {phase} {done} objects"),
        };
        match &self.bar {
            Some(b) => b.set_message(msg),
            None => {
                // Without a terminal: a line every 10 s, so CI logs show the build moving.
                let mut last = self.last_line.lock().unwrap();
                if last.is_none_or(|t| t.elapsed().as_secs() >= 10) {
                    *last = Some(Instant::now());
                    self.owner.println(&format!("{}: {msg}", self.arch));
                }
            }
        }
    }

    fn note(&self, msg: &str) {
        self.owner.println(&format!("{}: {msg}", self.arch));
    }
}
