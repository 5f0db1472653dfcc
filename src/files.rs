//! Files and paths every layer uses: JSON written atomically, the cache directory, cache keys.
use std::path::PathBuf;

/// Where builds, sources and boot images are cached (`$MODVERIFY_CACHE`, else
/// `$XDG_CACHE_HOME/modverify`, else `~/.cache/modverify`).
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MODVERIFY_CACHE") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache")
        });
    base.join("modverify")
}

/// Seconds since the epoch, as results record when a run started and ended.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A short stable hash (FNV-1a, 64 bit) for cache keys.
pub fn short_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")[..10].to_string()
}

/// Writes JSON through a temp file and a rename, so a reader never sees half a file.
pub fn write_atomic<T: serde::Serialize>(path: &std::path::Path, v: &T) -> std::io::Result<()> {
    // Serialized in memory first: serde_json writes token by token, a syscall each on a File.
    let mut text = serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?;
    text.push(b'\n');
    write_bytes_atomic(path, &text)
}

/// Writes `bytes` through a temp file and a rename (a kernel image unwrapped for QEMU, …).
pub fn write_bytes_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    // tempfile creates 0600; results are CI artifacts other users and jobs read.
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Why a lock was not taken.
#[derive(Debug)]
pub enum LockError {
    Io(std::io::Error),
    /// Ctrl-C while waiting for another modverify to let go.
    Interrupted,
}

/// An exclusive lock on `path` (created if need be), held as long as the returned file is
/// open. When another process holds it, `on_wait` is called once and the wait goes on until
/// the lock is free or Ctrl-C is pressed.
pub fn lock_exclusive(
    path: &std::path::Path,
    on_wait: &mut dyn FnMut(),
) -> Result<std::fs::File, LockError> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(LockError::Io)?;
    flock_waiting(f, libc::LOCK_EX, on_wait)
}

/// A shared lock on `path`, held as long as the returned file is open: many readers at once,
/// none while [`lock_exclusive`] is held. `None` when `path` does not exist (no modverify ever
/// locked there, so none is writing there). `on_wait` as for [`lock_exclusive`].
pub fn lock_shared(
    path: &std::path::Path,
    on_wait: &mut dyn FnMut(),
) -> Result<Option<std::fs::File>, LockError> {
    match std::fs::File::open(path) {
        Ok(f) => flock_waiting(f, libc::LOCK_SH, on_wait).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LockError::Io(e)),
    }
}

/// Takes `op` (LOCK_EX or LOCK_SH) on `f`, waiting as [`lock_exclusive`] says.
fn flock_waiting(
    f: std::fs::File,
    op: libc::c_int,
    on_wait: &mut dyn FnMut(),
) -> Result<std::fs::File, LockError> {
    use std::os::fd::AsRawFd;
    let try_lock = || {
        // SAFETY: flock on a file descriptor we own.
        unsafe { libc::flock(f.as_raw_fd(), op | libc::LOCK_NB) == 0 }
    };
    if !try_lock() {
        on_wait();
        while !try_lock() {
            if crate::proc::interrupted() {
                return Err(LockError::Interrupted);
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    Ok(f)
}
