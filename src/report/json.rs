//! JSON output helpers: CRCs are written as `0x%08x` strings, as in Module.symvers.
use serde::Serializer;

pub fn opt_hex<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&format!("{v:#010x}")),
        None => s.serialize_none(),
    }
}

pub fn to_string<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialize: {e}\"}}"))
}

/// Writes JSON through a temp file and a rename, so a reader never sees half a file.
pub fn write_atomic<T: serde::Serialize>(path: &std::path::Path, v: &T) -> std::io::Result<()> {
    // Serialized in memory first: serde_json writes token by token, a syscall each on a File.
    let mut text = serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?;
    text.push(b'\n');
    write_bytes_atomic(path, &text)
}

/// Writes `bytes` to `path` through a temporary file in the same directory: readers see the
/// old file or the new one, never half of one.
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
