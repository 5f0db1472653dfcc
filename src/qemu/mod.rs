//! Booting a kernel under QEMU with modverify's initramfs and collecting what the guest
//! agent reports. A guest that crashes or hangs on a module is booted again from the next
//! module, so one bad module never hides the others. Every record is appended to
//! `events.jsonl` as it arrives: nothing is lost if the host run is interrupted.
pub mod command;
pub mod console;
pub mod failure;
pub use failure::{BootFailure, BootFailureKind};
pub mod records;

use crate::proc::{self, Ended, Limits};
use console::{ConsoleEvent, ConsoleParser};
use records::{GuestRecord, LoadEnd};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("{binary} is missing: install Debian's {package} (or {hint})", hint = crate::host::INSTALL_HINT)]
    Missing { binary: String, package: String },
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What happened to one module in the guest, as the agent reported it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GuestModule {
    pub index: usize,
    pub name: String,
    /// `finit_module`'s return value and errno; `None` if no result arrived.
    pub ret: Option<i64>,
    pub errno: Option<i32>,
    /// The errno's name as the guest's C library spells it (`ENODEV`): errno numbers differ
    /// between arches (EOPNOTSUPP is 95 on x86, 45 on sparc, 122 on mips).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno_name: Option<String>,
    /// Set when the agent or the host saw the module take the kernel down or hang it.
    pub fate: Option<Fate>,
    pub micros: Option<u64>,
    /// The kernel's messages while this module loaded, as (level, text).
    pub kmsg: Vec<(u8, String)>,
    pub unload: Option<(i64, i32)>,
    /// Its unloading took the guest down (a panic or oops in its exit path).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unload_crashed: bool,
    /// Console lines around a crash or hang.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub console_excerpt: Vec<String>,
}

impl GuestModule {
    /// One line for a person: how the load ended and the kernel's first words on it.
    pub fn said(&self) -> String {
        let how = match (self.fate, self.ret) {
            (Some(Fate::Crashed), _) => "took the kernel down".to_string(),
            (Some(Fate::Hung), _) => "hung in its init".to_string(),
            (None, Some(0)) => "loaded".to_string(),
            (None, Some(_)) => format!(
                "refused ({})",
                self.errno_name
                    .clone()
                    .unwrap_or_else(|| format!("errno {}", self.errno.unwrap_or(0)))
            ),
            (None, None) => "no result".to_string(),
        };
        match self.kmsg.first() {
            Some((_, text)) => format!("{}: {how}: {text}", self.name),
            None => format!("{}: {how}", self.name),
        }
    }
}

/// How a module ended when it never returned from `finit_module`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    Crashed,
    Hung,
}

/// What the guest has got to, for progress: one per record that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootEvent {
    /// Before the first guest: the modules this run reports and the guests it boots.
    Planned { modules: usize, boots: usize },
    /// The agent is running (`hello`).
    AgentStarted,
    /// The agent is loading this module.
    Loading { name: String },
    /// One module's load result arrived (its place in this guest's plan).
    ModuleDone { index: usize },
    /// The agent is unloading a module.
    Unloading,
    /// The agent is reading the running export table.
    ReadingTable,
    /// The agent is done.
    Done,
}

impl BootEvent {
    fn of_record(r: &GuestRecord) -> Option<Self> {
        match r {
            GuestRecord::Hello => Some(BootEvent::AgentStarted),
            GuestRecord::Load { name, .. } => Some(BootEvent::Loading { name: name.clone() }),
            GuestRecord::Result { index, .. } => Some(BootEvent::ModuleDone {
                index: index.unwrap_or(usize::MAX),
            }),
            GuestRecord::Unload { .. } => Some(BootEvent::Unloading),
            GuestRecord::Table { .. } | GuestRecord::TableNote(_) => Some(BootEvent::ReadingTable),
            GuestRecord::Done { .. } => Some(BootEvent::Done),
            _ => None,
        }
    }
}

/// One entry of the running kernel's export table.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuntimeExport {
    pub index: usize,
    /// `None` in digest mode: the names are covered by the chunk's digest instead.
    pub name: Option<String>,
    pub crc: Option<u32>,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RuntimeTable {
    pub entries: usize,
    pub crc_slots: usize,
    /// Bytes of `__kflagstab` (7.1+: one per entry, bit 0 GPL-only); `None` where the kernel
    /// has none and GPL-only exports live in `__ksymtab_gpl` instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag_bytes: Option<usize>,
    /// The flags byte of each entry, by index, as received.
    #[serde(skip)]
    pub flags: Vec<Option<u8>>,
    pub exports: Vec<RuntimeExport>,
    /// Digest mode: CRC-32 over "name\0namespace\0" of entries start..start+len.
    pub name_digests: Vec<NameDigest>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NameDigest {
    pub start: usize,
    pub len: usize,
    pub crc: u32,
}

#[cfg(test)]
mod tests {
    use super::init_death;

    #[test]
    fn init_killed_by_a_signal_is_named() {
        let lines = [
            "[    0.52] init[1]: unhandled signal 4 code 0x1 at 0x00000000000104f6 in init[104f6,10000+6e000]".to_string(),
            "[    0.53] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000004".to_string(),
        ];
        assert_eq!(
            init_death(&lines).unwrap(),
            "init (the guest agent) was killed by signal 4 (SIGILL) at 0x00000000000104f6 in init[104f6,10000+6e000]"
        );
        let exited = [
            "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100".to_string(),
        ];
        assert_eq!(
            init_death(&exited).unwrap(),
            "init (the guest agent) exited with status 1"
        );
        assert_eq!(
            init_death(&["Kernel panic - not syncing: VFS".to_string()]),
            None
        );
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BootAttempt {
    pub start_index: usize,
    pub ended: Ended,
    pub seconds: f64,
    pub saw_done: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crash_lines: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GuestRun {
    pub boots: Vec<BootAttempt>,
    pub modules: Vec<GuestModule>,
    pub tables: BTreeMap<String, RuntimeTable>,
    /// The guest reached `done` (possibly after reboots).
    pub done: bool,
    /// Records that failed their CRC or went missing.
    pub damaged_records: usize,
    pub lost_records: u64,
    /// Why the guest did not reach `done`, if so (QEMU's failure, or the kernel's, or the
    /// agent's).
    pub boot_failure: Option<BootFailure>,
    /// What the agent said when it could not read a table ("ksymtab_gpl missing", …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub table_notes: Vec<String>,
    pub seconds_to_done: Option<f64>,
    /// The agent found that this kernel cannot decompress modules itself (index of the probe
    /// module, errno): the boot must be repeated with decompressed modules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_decompress: Option<(usize, i32)>,
    /// /proc/meminfo's MemTotal and MemAvailable (KiB) with every module loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_kib: Option<(u64, u64)>,
    /// The guest ran out of memory (the kernel's OOM killer ran) during a load.
    pub out_of_memory: bool,
    /// The module (index) whose unloading took the guest down; later unloads not tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unload_crash: Option<usize>,
    /// What was done in the agent's shell, in order (`insmod md5: refused (EINVAL)`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shell: Vec<String>,
}

impl GuestRun {
    /// The running kernel keeps the 7.1+ layout: one `__ksymtab` whose GPL-only exports are
    /// told by a `__kflagstab` byte each (the agent sent the flags with the table).
    pub fn flagged_layout(&self) -> bool {
        self.tables
            .get("ksymtab")
            .is_some_and(|t| t.flag_bytes.is_some())
    }
}

pub struct BootPlan<'a> {
    pub arch: &'a crate::arch::ArchDescriptor,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub token: &'a str,
    pub module_names: Vec<String>,
    /// Seconds for the kernel to reach the agent.
    pub boot_timeout: Duration,
    /// Seconds without any console output before the guest counts as hung.
    pub silence: Duration,
    /// The agent's limit for one module's load (it records the module hung and goes on).
    pub module_timeout: Duration,
    pub extra_append: String,
    pub out_dir: &'a Path,
    /// Guest memory (MiB), sized from the payload.
    pub memory_mb: Option<u64>,
    /// A person at the terminal (`repro`, `boot --shell`): after its loads the agent stays
    /// in its shell; the console is shown once the shell starts, without the records, and
    /// what is typed reaches it. Only `bye` (the shell's end) finishes the guest.
    pub interactive: bool,
}

impl BootPlan<'_> {
    /// The most one guest may take to load and unload `modules` modules.
    fn budget(&self, modules: usize) -> Duration {
        budget(
            self.boot_timeout,
            self.module_timeout,
            self.silence,
            modules,
        )
    }
}

/// The most one guest may take: the boot to the agent, each module's load limit, and a
/// silence's worth each for reading the export table and powering off. It is a backstop;
/// a guest that stops talking is stopped after `silence`, a hung load after `module`.
pub fn budget(boot: Duration, module: Duration, silence: Duration, modules: usize) -> Duration {
    boot + module * modules as u32 + silence * 2
}

/// console.log: each line as written, with agent records made readable
/// (`console::readable`). The runner writes one whole line per call.
struct ReadableLog(std::fs::File);

impl std::io::Write for ReadableLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (&*line, ""),
        };
        self.0
            .write_all(format!("{}{end}", console::readable(body)).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// How long a guest has after `done` to power its machine off before QEMU is stopped.
const POWER_OFF_GRACE: Duration = Duration::from_secs(1);

/// Boots until the agent reports `done`, rebooting past crashed or hung modules.
pub fn boot_and_collect(
    plan: &BootPlan<'_>,
    on_event: &mut dyn FnMut(BootEvent),
) -> Result<GuestRun, QemuError> {
    let qemu = match crate::host::boots_here(plan.arch) {
        Ok(q) => q,
        Err(crate::host::CannotBoot::NotInstalled { binary, packages }) => {
            return Err(QemuError::Missing {
                binary,
                package: packages.join(" "),
            })
        }
        Err(crate::host::CannotBoot::Unsupported(_)) => unreachable!("checked by the caller"),
    };
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| QemuError::Io {
            path: p.clone(),
            source: e,
        }
    };
    let console_path = plan.out_dir.join("console.log");
    let events_path = plan.out_dir.join("events.jsonl");
    let mut console_log =
        ReadableLog(std::fs::File::create(&console_path).map_err(io(&console_path))?);
    let mut events = std::fs::File::create(&events_path).map_err(io(&events_path))?;
    let mut run = GuestRun {
        modules: plan
            .module_names
            .iter()
            .enumerate()
            .map(|(index, name)| GuestModule {
                index,
                name: name.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut parser = ConsoleParser::new(plan.token);
    let mut start = 0usize;
    let began = Instant::now();
    let n = plan.module_names.len();
    // Every reboot skips at least one module, so this bounds the loop.
    for _attempt in 0..=n + 1 {
        // Where the machine has a second UART, results travel on it, apart from the console;
        // the agent is told on the command line, so a hand-run QEMU keeps them on the console.
        // A person's guest keeps one stream: the host takes the records out of it.
        let result_port = qemu.result_port.as_deref().filter(|_| !plan.interactive);
        let mut append = match result_port {
            Some(port) => format!(
                "{} modverify.start={start} modverify.results={port}",
                plan.extra_append
            ),
            None => format!("{} modverify.start={start}", plan.extra_append),
        };
        if plan.interactive {
            // The host's terminal stays cooked and echoes what is typed: the guest must not.
            append += " modverify.shell=1 modverify.noecho=1";
        }
        let serial_path = plan.out_dir.join("serial.log");
        let serial = proc::Followed::create(&serial_path).map_err(io(&serial_path))?;
        let results = match result_port {
            Some(_) => {
                let p = plan.out_dir.join("results-port.log");
                Some(proc::Followed::create(&p).map_err(io(&p))?)
            }
            None => None,
        };
        let mut cmd = command::QemuCommand::new(plan.arch, plan.kernel, plan.initrd, append.trim())
            .expect("qemu facts");
        // The log names the files that are kept; QEMU itself writes into their FIFOs.
        cmd.memory_mb = plan.memory_mb;
        cmd.serial_file = Some(serial.path());
        cmd.result_file = results.as_ref().map(|r| r.path());
        if plan.interactive {
            // The console is QEMU's stdio (-nographic), which the host relays.
            cmd.serial_file = None;
        }
        let _ = writeln!(console_log, "==== modverify: {}", cmd.show());
        if !plan.interactive {
            cmd.serial_file = Some(serial.child_path());
            cmd.result_file = results.as_ref().map(|r| r.child_path());
        }
        let command = cmd.command();
        let followed: Vec<proc::Followed> = std::iter::once(serial).chain(results).collect();
        parser.new_boot();
        let mut in_flight: Option<usize> = None;
        let mut unloading: Option<usize> = None;
        let mut saw_hello = false;
        let mut saw_done = false;
        let mut reading_table = false;
        // The agent powers the machine off after `done`; where the machine cannot (x86 without
        // ACPI, boards without a power-off device) QEMU is stopped a moment later.
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The kernel has --timeout to reach the agent (its `hello`), in every boot.
        let started = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let shell_on = std::cell::Cell::new(false);
        let mut crash_lines = Vec::new();
        // The kernel's words on init (the agent) dying: "init[1]: unhandled signal 4 …" and
        // "Attempted to kill init! exitcode=0x00000004".
        let mut init_lines: Vec<String> = Vec::new();
        let mut recent: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let t0 = Instant::now();
        // What QEMU itself said ("qemu-system-riscv64: Some ROM regions are overlapping"), and
        // whether anything came from the machine (firmware or kernel) at all.
        let mut qemu_said: Vec<String> = Vec::new();
        let mut machine_lines = 0usize;
        let qemu_prefix = format!("{}:", qemu.binary);
        let mut handle_line = |line: &str| {
            let t = line.trim();
            if t.starts_with(&qemu_prefix) {
                if qemu_said.len() < 4 {
                    qemu_said.push(t.to_string());
                }
            } else if !t.is_empty() && !t.starts_with("QEMU ") && !t.starts_with("(qemu)") {
                machine_lines += 1;
            }
            if recent.len() == 60 {
                recent.pop_front();
            }
            recent.push_back(line.to_string());
            if (line.contains("init[1]") || line.contains("Attempted to kill init"))
                && init_lines.len() < 8
            {
                init_lines.push(line.trim().to_string());
            }
            for ev in parser.feed(line) {
                match ev {
                    ConsoleEvent::Record(r) => {
                        // One write per record: it is on disk as it arrives, and cheap.
                        let mut record =
                            serde_json::json!({"seq": r.seq, "kind": r.kind, "fields": r.fields})
                                .to_string();
                        record.push('\n');
                        let _ = events.write_all(record.as_bytes());
                        let said = GuestRecord::parse(&r);
                        match &said {
                            GuestRecord::Unloading { index } => unloading = *index,
                            GuestRecord::Unload { .. } => unloading = None,
                            _ => {}
                        }
                        apply_record(
                            &mut run,
                            &said,
                            &mut in_flight,
                            &mut saw_hello,
                            &mut saw_done,
                        );
                        if saw_hello {
                            started.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        let done = matches!(said, GuestRecord::Done { .. });
                        if done && run.seconds_to_done.is_none() {
                            run.seconds_to_done = Some(began.elapsed().as_secs_f64());
                        }
                        // A person's guest is done when they leave its shell.
                        let over = if plan.interactive {
                            said == GuestRecord::Bye
                        } else {
                            done
                        };
                        if over {
                            finished.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        if plan.interactive {
                            if said == (GuestRecord::Done { shell: true }) {
                                shell_on.set(true);
                            }
                            if let GuestRecord::Result { index, .. } = &said {
                                if let Some(m) = index.and_then(|i| run.modules.get(i)) {
                                    crate::outln!("  {}", m.said());
                                }
                            }
                        }
                        // One record per table (__ksymtab, __ksymtab_gpl, …): said once.
                        match BootEvent::of_record(&said) {
                            Some(BootEvent::ReadingTable) if reading_table => {}
                            Some(e) => {
                                reading_table |= e == BootEvent::ReadingTable;
                                on_event(e)
                            }
                            None => {}
                        }
                    }
                    ConsoleEvent::Damaged(_) => run.damaged_records += 1,
                    ConsoleEvent::Gap { expected, got } => {
                        run.lost_records += got.saturating_sub(expected)
                    }
                    ConsoleEvent::Crash(l) => crash_lines.push(l),
                }
            }
        };
        let limits = Limits {
            // A person's shell takes as long as they like.
            total: (!plan.interactive).then(|| plan.budget(n.saturating_sub(start))),
            silence: (!plan.interactive).then_some(plan.silence),
            finished: Some((finished.clone(), POWER_OFF_GRACE)),
            started: Some((started.clone(), plan.boot_timeout)),
        };
        let ended = if plan.interactive {
            drop(followed);
            let handle_line = std::cell::RefCell::new(&mut handle_line);
            let log = std::cell::RefCell::new(&mut console_log);
            let line = |text: &str| {
                let _ = log.borrow_mut().write_all(format!("{text}\n").as_bytes());
                (handle_line.borrow_mut())(text);
            };
            let mut pending: Vec<u8> = Vec::new();
            let mut shown = console::Unframed::new(plan.token);
            proc::run_interactive(
                command,
                &mut |bytes| {
                    let mut out = Vec::new();
                    for &b in bytes {
                        pending.push(b);
                        if b == b'\n' {
                            let text = String::from_utf8_lossy(&pending);
                            line(text.trim_end_matches(['\n', '\r']));
                            pending.clear();
                        }
                        // Nothing before the shell (the boot, the records): its progress
                        // is said for it.
                        if shell_on.get() {
                            shown.push(b, &mut out);
                        }
                    }
                    if !out.is_empty() {
                        let mut o = std::io::stdout().lock();
                        let _ = o.write_all(&out);
                        let _ = o.flush();
                    }
                },
                &mut |text| line(text),
                b"poweroff\n",
                limits,
            )
        } else {
            proc::run_following(
                command,
                followed,
                Some(&mut console_log),
                &mut handle_line,
                limits,
            )
        }
        .map_err(|e| QemuError::Spawn {
            binary: qemu.binary.clone(),
            source: e,
        })?;
        let excerpt: Vec<String> = recent
            .iter()
            .filter(|l| !l.contains("@MV "))
            .cloned()
            .collect();
        run.boots.push(BootAttempt {
            start_index: start,
            ended,
            seconds: t0.elapsed().as_secs_f64(),
            saw_done,
            crash_lines: crash_lines.clone(),
        });
        let _ = events.flush();
        if saw_done {
            run.done = true;
            break;
        }
        if run.no_decompress.is_some() {
            break;
        }
        if ended == Ended::Interrupted {
            break;
        }
        // A module's exit path took the kernel down: the loads and the table are in; the
        // other unloads of this guest cannot be done (the reboot loop is for loads).
        if let Some(i) = unloading.filter(|_| in_flight.is_none()) {
            if let Some(m) = run.modules.get_mut(i) {
                m.unload_crashed = true;
                m.console_excerpt = excerpt;
            }
            run.done = true;
            run.unload_crash = Some(i);
            break;
        }
        match in_flight {
            Some(i) => {
                let m = &mut run.modules[i];
                m.fate = Some(
                    if crash_lines.is_empty() && matches!(ended, Ended::TimedOut | Ended::Silent) {
                        Fate::Hung
                    } else {
                        Fate::Crashed
                    },
                );
                m.console_excerpt = excerpt;
                start = i + 1;
            }
            // QEMU would not run the machine at all: nothing from firmware or kernel, an
            // error status. The run's failure, not the kernel's.
            None if !saw_hello
                && machine_lines == 0
                && matches!(ended, Ended::Exited(c) if c != 0) =>
            {
                run.boot_failure = Some(BootFailure::new(
                    BootFailureKind::Infrastructure,
                    format!(
                        "QEMU would not start the machine ({ended}){}",
                        if qemu_said.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", qemu_said.join("; "))
                        }
                    ),
                ));
                break;
            }
            None if !saw_hello => {
                use BootFailureKind::{AgentDied, KernelCrashed, KernelHung};
                let (kind, text) = match init_death(&init_lines) {
                    Some(death) => (
                        AgentDied,
                        format!(
                            "{death}, before it reported anything: the kernel booted, the agent could not run on it (console in {})",
                            console_path.display()
                        ),
                    ),
                    None => match ended {
                        Ended::NotStarted => (
                            KernelHung,
                            format!(
                                "the kernel did not reach the agent within --timeout {} (console in {})",
                                crate::proc::duration_text(plan.boot_timeout),
                                console_path.display()
                            ),
                        ),
                        Ended::TimedOut | Ended::Silent => (
                            KernelHung,
                            format!(
                                "the kernel did not reach the agent: QEMU {ended} (console in {})",
                                console_path.display()
                            ),
                        ),
                        _ if !crash_lines.is_empty() => (
                            KernelCrashed,
                            format!("the kernel crashed while booting: {}", crash_lines[0]),
                        ),
                        _ => (
                            KernelHung,
                            format!(
                                "QEMU {ended} before the agent started (console in {})",
                                console_path.display()
                            ),
                        ),
                    },
                };
                run.boot_failure = Some(BootFailure::new(kind, text));
                break;
            }
            None => {
                // The agent ran but died between modules (e.g. reading the export table).
                run.boot_failure = Some(BootFailure::new(
                    BootFailureKind::AgentDied,
                    match init_death(&init_lines) {
                        Some(death) => format!(
                            "{death}, after its loads and before reporting done (console in {})",
                            console_path.display()
                        ),
                        None => format!(
                            "the guest stopped after its loads without reporting done: QEMU {ended}"
                        ),
                    },
                ));
                break;
            }
        }
    }
    Ok(run)
}

/// "init (the guest agent) was killed by signal 4 (SIGILL) at 0x104f6 in init[…]" from the
/// kernel's lines about init, or `None` if init did not die.
pub fn init_death(lines: &[String]) -> Option<String> {
    let code = lines.iter().find_map(|l| {
        let hex = l.split("exitcode=").nth(1)?;
        let hex = hex.trim().trim_start_matches("0x");
        u32::from_str_radix(hex.split(|c: char| !c.is_ascii_hexdigit()).next()?, 16).ok()
    })?;
    // Where, from the arch's "unhandled signal" line: "… at 0x… in init[…]".
    let place = lines
        .iter()
        .find(|l| l.contains("init[1]") && !l.contains("Attempted"))
        .and_then(|l| l.find(" at ").map(|p| l[p + 1..].trim().to_string()))
        .map(|p| format!(" {p}"))
        .unwrap_or_default();
    let signal = code & 0x7f;
    Some(if signal != 0 {
        // The numbers the same on every Linux arch; others are shown as numbers.
        let name = match signal {
            4 => " (SIGILL)",
            5 => " (SIGTRAP)",
            6 => " (SIGABRT)",
            8 => " (SIGFPE)",
            9 => " (SIGKILL)",
            11 => " (SIGSEGV)",
            _ => "",
        };
        format!("init (the guest agent) was killed by signal {signal}{name}{place}")
    } else {
        format!(
            "init (the guest agent) exited with status {}{place}",
            code >> 8
        )
    })
}

fn apply_record(
    run: &mut GuestRun,
    r: &GuestRecord,
    in_flight: &mut Option<usize>,
    saw_hello: &mut bool,
    saw_done: &mut bool,
) {
    match r {
        GuestRecord::Hello => *saw_hello = true,
        GuestRecord::Memory {
            total_kib,
            avail_kib,
        } => run.memory_kib = Some((*total_kib, *avail_kib)),
        GuestRecord::NoDecompress { index, errno } => run.no_decompress = Some((*index, *errno)),
        GuestRecord::Load { index, .. } => *in_flight = *index,
        GuestRecord::Shell {
            what,
            name,
            ok,
            errno_name,
        } => run.shell.push(if *ok {
            format!("{what} {name}: ok")
        } else {
            format!("{what} {name}: refused ({errno_name})")
        }),
        GuestRecord::Result { index, end, micros } => {
            if let Some(m) = index.and_then(|i| run.modules.get_mut(i)) {
                match end {
                    Some(LoadEnd::Hung) => m.fate = Some(Fate::Hung),
                    Some(LoadEnd::Crashed) => m.fate = Some(Fate::Crashed),
                    Some(LoadEnd::Returned {
                        ret,
                        errno,
                        errno_name,
                    }) => {
                        m.ret = *ret;
                        m.errno = *errno;
                        m.errno_name = errno_name.clone();
                    }
                    None => {}
                }
                m.micros = *micros;
            }
            *in_flight = None;
        }
        GuestRecord::Kmsg { who, level, text } => {
            if text.contains("invoked oom-killer") {
                run.out_of_memory = true;
            }
            if let Some(m) = run.modules.iter_mut().find(|m| m.name == *who) {
                m.kmsg.push((*level, text.clone()));
            }
        }
        GuestRecord::Unload { index, ret, errno } => {
            if let Some(m) = index.and_then(|i| run.modules.get_mut(i)) {
                m.unload = Some((*ret, *errno));
            }
        }
        GuestRecord::Table {
            name,
            entries,
            crc_slots,
            flag_bytes,
        } => {
            let t = run.tables.entry(name.clone()).or_default();
            t.entries = *entries;
            t.crc_slots = *crc_slots;
            t.flag_bytes = *flag_bytes;
        }
        GuestRecord::TableNote(note) => run.table_notes.push(note.clone()),
        GuestRecord::KFlags {
            table,
            start,
            digits,
        } => {
            let t = run.tables.entry(table.clone()).or_default();
            for (k, c) in digits.chars().enumerate() {
                let i = start + k;
                if i >= 1 << 24 {
                    break; // a damaged index, not a table of 16M exports
                }
                if t.flags.len() <= i {
                    t.flags.resize(i + 1, None);
                }
                t.flags[i] = c.to_digit(16).map(|d| d as u8);
            }
        }
        GuestRecord::Ksym { table, items } => {
            let t = run.tables.entry(table.clone()).or_default();
            t.exports.extend(items.iter().map(|x| RuntimeExport {
                index: x.index,
                name: Some(x.name.clone()),
                crc: x.crc,
                namespace: x.namespace.clone(),
            }));
        }
        GuestRecord::Kdig {
            table,
            start,
            names_crc,
            crcs,
        } => {
            let t = run.tables.entry(table.clone()).or_default();
            t.name_digests.push(NameDigest {
                start: *start,
                len: crcs.len(),
                crc: *names_crc,
            });
            for (k, crc) in crcs.iter().enumerate() {
                t.exports.push(RuntimeExport {
                    index: start + k,
                    name: None,
                    crc: *crc,
                    namespace: None,
                });
            }
        }
        GuestRecord::Done { .. } => *saw_done = true,
        GuestRecord::Unloading { .. } | GuestRecord::Bye | GuestRecord::Other => {}
    }
}
