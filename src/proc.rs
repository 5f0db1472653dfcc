//! Child processes: each in its own process group, stdout/stderr drained on threads into a
//! log file and a line callback (a chatty child never blocks), and the whole group killed —
//! SIGTERM, a grace period, SIGKILL — on timeout, silence, Ctrl-C or any early return.
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

static INTERRUPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Makes SIGINT/SIGTERM set a flag instead of killing us, so children are stopped cleanly
/// and results already obtained are written. Idempotent.
pub fn install_interrupt_handler() {
    let flag = INTERRUPTED.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, flag.clone());
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.get().is_some_and(|f| f.load(Ordering::Relaxed))
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "how", content = "value")]
pub enum Ended {
    Exited(i32),
    Signalled(i32),
    TimedOut,
    /// No output for longer than the silence limit.
    Silent,
    Interrupted,
    /// Stopped by us once its work was done (`Limits::finished`) and it did not exit.
    Stopped,
    /// Stopped by us: its work had not begun within `Limits::started`.
    NotStarted,
}

impl Ended {
    pub fn success(self) -> bool {
        self == Ended::Exited(0)
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Exited(c) => write!(f, "exited with status {c}"),
            Ended::Signalled(s) => write!(f, "killed by signal {s}"),
            Ended::TimedOut => write!(f, "timed out"),
            Ended::Silent => write!(f, "printed nothing for too long"),
            Ended::Interrupted => write!(f, "interrupted"),
            Ended::Stopped => write!(f, "was stopped after its work was done"),
            Ended::NotStarted => write!(f, "was stopped: its work had not begun in time"),
        }
    }
}

/// Parses `90`, `90s`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || {
        format!(
            "`{s}` is not a duration: a positive number with ms, s, m or h (90, 90s, 500ms, 2m)"
        )
    };
    let (num, unit_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        (t, 1000)
    };
    let n: u64 = num.trim().parse().map_err(|_| bad())?;
    let ms = n.checked_mul(unit_ms).ok_or_else(bad)?;
    if ms == 0 {
        // A zero limit would mark every module hung (or every boot timed out).
        return Err(format!("`{s}` is zero: a limit must be positive"));
    }
    Ok(Duration::from_millis(ms))
}

/// A duration as `--timeout` takes it: "500ms", "90s", "2m".
pub fn duration_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        format!("{ms}ms")
    } else if ms >= 60_000 && ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1000)
    }
}

#[derive(Debug, Default, Clone)]
pub struct Limits {
    pub total: Option<Duration>,
    pub silence: Option<Duration>,
    /// Set (by the line callback) when the child's work is done: it then has the given time
    /// to exit by itself before its group is stopped (a guest that cannot power its machine
    /// off — no ACPI, no power-off device — would otherwise sit until the silence limit).
    pub finished: Option<(Arc<AtomicBool>, Duration)>,
    /// Set (by the line callback) once the child's work has begun; if it is not set within
    /// the given time the child is stopped and `Ended::NotStarted` (a guest whose kernel
    /// never reaches its agent).
    pub started: Option<(Arc<AtomicBool>, Duration)>,
}

impl Limits {
    /// The limit a child watched since `start` has reached (Ctrl-C first), if any: the one
    /// reading of the limits for every way a child is run. `finished_at` remembers when its
    /// work was seen done.
    fn reached(
        &self,
        start: Instant,
        last_output: Instant,
        finished_at: &mut Option<Instant>,
    ) -> Option<Ended> {
        if interrupted() {
            return Some(Ended::Interrupted);
        }
        if self.total.is_some_and(|t| start.elapsed() > t) {
            return Some(Ended::TimedOut);
        }
        if self.silence.is_some_and(|t| last_output.elapsed() > t) {
            return Some(Ended::Silent);
        }
        if let Some((flag, within)) = &self.started {
            if !flag.load(Ordering::Relaxed) && start.elapsed() > *within {
                return Some(Ended::NotStarted);
            }
        }
        if let Some((flag, grace)) = &self.finished {
            if flag.load(Ordering::Relaxed) {
                let at = *finished_at.get_or_insert_with(Instant::now);
                if at.elapsed() > *grace {
                    return Some(Ended::Stopped);
                }
            }
        }
        None
    }
}

/// Kills the child's process group when dropped, unless it was reaped.
struct GroupGuard {
    child: Child,
    reaped: bool,
}

impl GroupGuard {
    fn kill_group(&mut self) {
        let pgid = self.child.id() as i32;
        // SAFETY: kill(2) with a negative pid signals the process group we created.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above; the group may outlive its leader, so always send SIGKILL too.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
        self.reaped = true;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill_group();
        }
    }
}

/// Runs `cmd` to completion (or until a limit), sending every output line to `log` and `on_line`.
pub fn run(
    cmd: Command,
    log: Option<&mut dyn Write>,
    on_line: &mut dyn FnMut(&str),
    limits: Limits,
) -> std::io::Result<Ended> {
    run_following(cmd, Vec::new(), log, on_line, limits)
}

/// Runs a short tool to completion the same way (own process group, killed on Ctrl-C or an
/// early return): how it ended and everything it printed, stdout and stderr, line by line.
pub fn output(cmd: Command) -> std::io::Result<(Ended, String)> {
    let mut text = String::new();
    let ended = run(
        cmd,
        None,
        &mut |l: &str| {
            text.push_str(l);
            text.push('\n');
        },
        Limits::default(),
    )?;
    Ok((ended, text))
}

/// How a short tool run by `tool` failed; each layer turns it into its own error.
#[derive(Debug)]
pub enum ToolError {
    /// It could not be started.
    Spawn(std::io::Error),
    /// Ctrl-C stopped it.
    Interrupted,
    /// It ran and failed: its command line and everything it printed.
    Failed { cmd: String, output: String },
}

/// Runs a short tool through `output` (own process group, killed on Ctrl-C): what it
/// printed if it exited 0.
pub fn tool(cmd: &Command) -> Result<String, ToolError> {
    let line = command_line(cmd);
    let mut c = Command::new(cmd.get_program());
    c.args(cmd.get_args());
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let (ended, text) = output(c).map_err(ToolError::Spawn)?;
    match ended {
        Ended::Exited(0) => Ok(text),
        Ended::Interrupted => Err(ToolError::Interrupted),
        _ => Err(ToolError::Failed {
            cmd: line,
            output: text,
        }),
    }
}

/// What a tool printed if it succeeded (`--version`, `rev-parse`), else nothing.
pub fn stdout_if_ok(cmd: Command) -> Option<String> {
    output(cmd)
        .ok()
        .filter(|(e, _)| e.success())
        .map(|(_, t)| t)
}

/// A file the child writes and we follow as it grows (QEMU's `-serial file:`). Where the
/// filesystem allows it the child writes into a FIFO beside the file instead, which we drain
/// without blocking and copy into the file in chunks: QEMU writes a serial port one byte per
/// syscall, and into a regular file each byte costs an inode update (about 30 ms of a
/// 0.5 s riscv64 boot, measured), into a pipe almost nothing. Polling, rather than a
/// blocking read, keeps the reader from waking once per byte.
pub struct Followed {
    /// The file that holds everything the child wrote, as it arrives.
    path: PathBuf,
    fifo: Option<(PathBuf, std::fs::File)>,
}

impl Followed {
    pub fn create(path: &std::path::Path) -> std::io::Result<Followed> {
        let _ = std::fs::remove_file(path);
        let fifo_path = path.with_extension("fifo");
        let _ = std::fs::remove_file(&fifo_path);
        let fifo = make_fifo(&fifo_path).ok().map(|reader| (fifo_path, reader));
        if fifo.is_some() {
            std::fs::File::create(path)?;
        }
        Ok(Followed {
            path: path.to_path_buf(),
            fifo,
        })
    }

    /// The file that holds what the child wrote (the one to name to a user).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Where the child is to write.
    pub fn child_path(&self) -> &std::path::Path {
        self.fifo.as_ref().map_or(&self.path, |(p, _)| p)
    }
}

impl Drop for Followed {
    fn drop(&mut self) {
        if let Some((p, _)) = &self.fifo {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Creates a FIFO and opens its read end without blocking, so that the child's open for
/// writing does not wait for us.
fn make_fifo(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: mkfifo(3) on a NUL-terminated path we own.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    // A bigger pipe, so a burst is never throttled between two polls; the default is fine too.
    // SAFETY: fcntl(2) on a descriptor we own.
    unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    Ok(f)
}

/// Follows one file the child writes, polling it, until `stop` is set and it is drained.
/// What the reader threads send to the loop that watches the child.
enum Output {
    Line(String),
    /// Raw bytes of an interactive child's stdout, as they came.
    Bytes(Vec<u8>),
    /// The child's stdout or stderr reached its end: the child is probably exiting.
    PipeClosed,
}

fn follow_one(followed: Followed, tx: mpsc::Sender<Output>, stop: Arc<AtomicBool>) {
    use std::io::Read;
    let (mut source, mut copy) = match &followed.fifo {
        Some((_, reader)) => (
            reader.try_clone().ok(),
            std::fs::OpenOptions::new()
                .append(true)
                .open(&followed.path)
                .ok(),
        ),
        None => (None, None),
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if source.is_none() && followed.fifo.is_none() {
            // The child creates the plain file itself.
            source = std::fs::File::open(&followed.path).ok();
        }
        let mut got = 0;
        if let Some(f) = source.as_mut() {
            // Ok(0): end of file, or a FIFO with no writer yet; Err: EAGAIN on an empty FIFO.
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got += n;
                if let Some(c) = copy.as_mut() {
                    let _ = c.write_all(&buf[..n]);
                }
                pending.extend_from_slice(&buf[..n]);
            }
        }
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&pending[..i])
                .trim_end_matches('\r')
                .to_string();
            pending.drain(..=i);
            if tx.send(Output::Line(line)).is_err() {
                return;
            }
        }
        if stopping && got == 0 {
            if !pending.is_empty() {
                let _ = tx.send(Output::Line(String::from_utf8_lossy(&pending).into_owned()));
            }
            return;
        }
        if got == 0 {
            // Unparked at once when the child has ended, so the end is not a poll late.
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }
}

/// `run`, also following the files in `follow` (written by the child) as part of its output.
pub fn run_following(
    mut cmd: Command,
    follow: Vec<Followed>,
    mut log: Option<&mut dyn Write>,
    on_line: &mut dyn FnMut(&str),
    limits: Limits,
) -> std::io::Result<Ended> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let (tx, rx) = mpsc::channel::<Output>();
    let mut readers = Vec::new();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as _),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut r = BufReader::new(pipe);
            let mut buf = Vec::new();
            while r.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                if tx.send(Output::Line(line)).is_err() {
                    break;
                }
                buf.clear();
            }
            let _ = tx.send(Output::PipeClosed);
        }));
    }
    let pipes = readers.len();
    let stop_follow = Arc::new(AtomicBool::new(false));
    let mut followers = Vec::new();
    for followed in follow {
        let (tx, stop) = (tx.clone(), stop_follow.clone());
        followers.push(std::thread::spawn(move || follow_one(followed, tx, stop)));
    }
    // Followers drain what is left and end as soon as they are told, not a poll later.
    let stop_followers = || {
        stop_follow.store(true, Ordering::Relaxed);
        for f in &followers {
            f.thread().unpark();
        }
    };
    drop(tx);
    let mut guard = GroupGuard {
        child,
        reaped: false,
    };
    let start = Instant::now();
    let mut last_output = Instant::now();
    let mut handle = |line: String, log: &mut Option<&mut dyn Write>| {
        if let Some(l) = log.as_mut() {
            // One write per line (writeln! would make two), unbuffered so the log is whole
            // whenever we stop.
            let mut text = line.clone();
            text.push('\n');
            let _ = l.write_all(text.as_bytes());
        }
        on_line(&line);
    };
    let mut pipes_closed = 0;
    let mut finished_at: Option<Instant> = None;
    let ended = loop {
        // Once the child's pipes are closed it is exiting: look for its status more often.
        let poll = Duration::from_millis(if pipes > 0 && pipes_closed == pipes {
            1
        } else {
            10
        });
        match rx.recv_timeout(poll) {
            Ok(Output::Line(line)) => {
                last_output = Instant::now();
                handle(line, &mut log);
                continue;
            }
            Ok(Output::PipeClosed) => pipes_closed += 1,
            Ok(Output::Bytes(_)) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Every reader finished: the child is exiting.
                let status = guard.child.wait()?;
                guard.reaped = true;
                break status_to_ended(status);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some(status) = guard.child.try_wait()? {
            guard.reaped = true;
            stop_followers();
            // Give the readers a moment to deliver what is still in the pipes.
            while let Ok(out) = rx.recv_timeout(Duration::from_millis(200)) {
                if let Output::Line(line) = out {
                    handle(line, &mut log);
                }
            }
            break status_to_ended(status);
        }
        if let Some(ended) = limits.reached(start, last_output, &mut finished_at) {
            guard.kill_group();
            break ended;
        }
    };
    stop_followers();
    // Anything left in the group (a daemonised grandchild holding a pipe) goes too.
    // SAFETY: signalling our own child's process group.
    unsafe { libc::kill(-(guard.child.id() as i32), libc::SIGKILL) };
    while let Ok(out) = rx.recv_timeout(Duration::from_millis(100)) {
        if let Output::Line(line) = out {
            handle(line, &mut log);
        }
    }
    for r in readers.into_iter().chain(followers) {
        let _ = r.join();
    }
    Ok(ended)
}

/// `run` for a child a person talks to: `input` (the terminal) is copied to its stdin, and
/// `at_end` written once `input` ends (a guest's `poweroff`); its stdout reaches `on_bytes`
/// raw, as it comes (a prompt has no newline), its stderr `on_line` line by line. The same
/// process group, limits and reaping as `run`; Ctrl-C stops the child, not us.
pub fn run_interactive(
    mut cmd: Command,
    on_bytes: &mut dyn FnMut(&[u8]),
    on_line: &mut dyn FnMut(&str),
    at_end: &'static [u8],
    limits: Limits,
) -> std::io::Result<Ended> {
    use std::io::Read;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let (tx, rx) = mpsc::channel::<Output>();
    let mut stdin = child.stdin.take();
    let stop_input = Arc::new(AtomicBool::new(false));
    let stopped = stop_input.clone();
    let forwarder = std::thread::spawn(move || {
        let input = terminal_input();
        while let Some(w) = stdin.as_mut() {
            if stopped.load(Ordering::Relaxed) {
                break;
            }
            let got = input
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .recv_timeout(Duration::from_millis(50));
            let ok = match got {
                Ok(Some(bytes)) => w.write_all(&bytes).and_then(|_| w.flush()).is_ok(),
                // The end of input: said once, then the child has it to itself.
                Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = w.write_all(at_end).and_then(|_| w.flush());
                    while !stopped.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    false
                }
                Err(mpsc::RecvTimeoutError::Timeout) => true,
            };
            if !ok {
                break;
            }
        }
    });
    let mut readers = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 14];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(Output::Bytes(buf[..n].to_vec())).is_err() {
                    break;
                }
            }
            let _ = tx.send(Output::PipeClosed);
        }));
    }
    if let Some(err) = child.stderr.take() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(Output::Line(line)).is_err() {
                    break;
                }
            }
            let _ = tx.send(Output::PipeClosed);
        }));
    }
    drop(tx);
    let mut guard = GroupGuard {
        child,
        reaped: false,
    };
    let start = Instant::now();
    let mut last_output = Instant::now();
    let mut finished_at: Option<Instant> = None;
    let mut deliver = |out: Output| match out {
        Output::Bytes(b) => on_bytes(&b),
        Output::Line(l) => on_line(&l),
        Output::PipeClosed => {}
    };
    let ended = loop {
        match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(out) => {
                last_output = Instant::now();
                deliver(out);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = guard.child.wait()?;
                guard.reaped = true;
                break status_to_ended(status);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some(status) = guard.child.try_wait()? {
            guard.reaped = true;
            while let Ok(out) = rx.recv_timeout(Duration::from_millis(200)) {
                deliver(out);
            }
            break status_to_ended(status);
        }
        if let Some(ended) = limits.reached(start, last_output, &mut finished_at) {
            guard.kill_group();
            break ended;
        }
    };
    // SAFETY: signalling our own child's process group.
    unsafe { libc::kill(-(guard.child.id() as i32), libc::SIGKILL) };
    while let Ok(out) = rx.recv_timeout(Duration::from_millis(100)) {
        deliver(out);
    }
    stop_input.store(true, Ordering::Relaxed);
    for r in readers.into_iter().chain([forwarder]) {
        let _ = r.join();
    }
    Ok(ended)
}

/// This process's standard input, read by one thread for the whole run and handed out in
/// chunks (`None`: its end), so successive interactive children (a guest booted again) each
/// get what is typed while they run, and no reader is left behind holding the next one's.
fn terminal_input() -> &'static std::sync::Mutex<mpsc::Receiver<Option<Vec<u8>>>> {
    static INPUT: OnceLock<std::sync::Mutex<mpsc::Receiver<Option<Vec<u8>>>>> = OnceLock::new();
    INPUT.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(None);
                        break;
                    }
                    Ok(n) => {
                        if tx.send(Some(buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        std::sync::Mutex::new(rx)
    })
}

fn status_to_ended(s: std::process::ExitStatus) -> Ended {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => Ended::Exited(c),
        (None, Some(sig)) => Ended::Signalled(sig),
        _ => Ended::Exited(-1),
    }
}

/// Quotes one argument for a POSIX shell, for reproducer command lines.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The command as a shell line: its environment settings, program and arguments, quoted. A
/// PATH that is this process's own with directories put before it is written as
/// `PATH=DIRS:"$PATH"`: what was added, not this machine's whole PATH.
pub fn command_line(cmd: &Command) -> String {
    let own_path = std::env::var("PATH").unwrap_or_default();
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| {
            let (k, v) = (k.to_string_lossy(), v?.to_string_lossy());
            let added = (k == "PATH" && !own_path.is_empty())
                .then(|| v.strip_suffix(own_path.as_str())?.strip_suffix(':'))
                .flatten();
            Some(match added {
                Some(dirs) => format!("PATH={}:\"$PATH\"", shell_quote(dirs)),
                None => format!("{k}={}", shell_quote(&v)),
            })
        })
        .collect();
    parts.push(shell_quote(&cmd.get_program().to_string_lossy()));
    parts.extend(cmd.get_args().map(|a| shell_quote(&a.to_string_lossy())));
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PATH with a directory put first is written as that directory and `$PATH`.
    #[test]
    fn a_command_line_says_what_was_added_to_path() {
        let own = std::env::var("PATH").unwrap();
        let mut c = Command::new("make");
        c.env("PATH", format!("/cache/gcc/bin:{own}")).arg("CC=x y");
        assert_eq!(
            command_line(&c),
            "PATH=/cache/gcc/bin:\"$PATH\" make 'CC=x y'"
        );
        c.env("PATH", "/only/this");
        assert_eq!(command_line(&c), "PATH=/only/this make 'CC=x y'");
    }

    #[test]
    fn output_is_drained_and_status_kept() {
        let mut lines = Vec::new();
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "for i in $(seq 1 20000); do echo line$i; echo err$i >&2; done; exit 3",
        ]);
        let e = run(
            c,
            None,
            &mut |l| lines.push(l.to_string()),
            Limits::default(),
        )
        .unwrap();
        assert_eq!(e, Ended::Exited(3));
        assert_eq!(lines.len(), 40000);
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!("sleep 100 & echo $! > {}; wait", pidfile.display()));
        let t = Instant::now();
        let e = run(
            c,
            None,
            &mut |_| {},
            Limits {
                total: Some(Duration::from_millis(300)),
                silence: None,
                finished: None,
                started: None,
            },
        )
        .unwrap();
        assert_eq!(e, Ended::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(10));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // Gone, or a zombie waiting for an init that does not reap: either way not running.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = state
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("gone");
        assert!(
            state == "gone" || state == "Z",
            "grandchild {pid} survived in state {state}"
        );
    }

    #[test]
    fn silence_is_detected() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo hi; sleep 100"]);
        let e = run(
            c,
            None,
            &mut |_| {},
            Limits {
                total: None,
                silence: Some(Duration::from_millis(300)),
                finished: None,
                started: None,
            },
        )
        .unwrap();
        assert_eq!(e, Ended::Silent);
    }

    /// Talking is not starting: a child that prints but never says its work began is
    /// stopped once the start limit passes, and one that says so is not.
    #[test]
    fn a_child_that_does_not_start_in_time_is_stopped() {
        let go = |flag_on: &'static str| {
            let started = Arc::new(AtomicBool::new(false));
            let mut c = Command::new("sh");
            c.args(["-c", "for i in 1 2 3 4 5 6; do echo $i; sleep 0.1; done"]);
            let s = started.clone();
            run(
                c,
                None,
                &mut |l| {
                    if l == flag_on {
                        s.store(true, Ordering::Relaxed)
                    }
                },
                Limits {
                    started: Some((started.clone(), Duration::from_millis(300))),
                    ..Default::default()
                },
            )
            .unwrap()
        };
        assert_eq!(go("never"), Ended::NotStarted);
        assert_eq!(go("1"), Ended::Exited(0));
    }

    #[test]
    fn a_followed_file_arrives_whole_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serial.log");
        let followed = Followed::create(&path).unwrap();
        // A FIFO where the filesystem has them (tmpfs and ext4 do).
        let fifo = followed.child_path().to_path_buf();
        assert_ne!(fifo, path);
        // Far more than the pipe holds: the child must wait for us, never lose a line.
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!(
            "seq 1 300000 | sed 's/^/line /' > {}",
            fifo.display()
        ));
        let mut lines = Vec::new();
        let e = run_following(
            c,
            vec![followed],
            None,
            &mut |l| lines.push(l.to_string()),
            Limits::default(),
        )
        .unwrap();
        assert_eq!(e, Ended::Exited(0));
        assert_eq!(lines.len(), 300000);
        assert_eq!(lines.last().map(String::as_str), Some("line 300000"));
        let kept = std::fs::read_to_string(&path).unwrap();
        assert_eq!(kept.lines().count(), 300000);
        assert!(!fifo.exists(), "the FIFO is removed afterwards");
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("ARCH=sparc"), "ARCH=sparc");
    }
}
