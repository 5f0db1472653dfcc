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
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, v).map_err(std::io::Error::other)?;
    std::io::Write::write_all(&mut tmp, b"\n")?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
