//! Finding module files and reading them, decompressed, into memory.
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no such file or directory")]
    Missing { path: PathBuf },
}

/// Compressed sizes above this are refused rather than inflated (decompression bombs).
const MAX_MODULE_BYTES: u64 = 1 << 30;

pub const MODULE_SUFFIXES: [&str; 4] = [".ko", ".ko.xz", ".ko.gz", ".ko.zst"];

pub fn is_module_name(p: &Path) -> bool {
    let n = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    MODULE_SUFFIXES.iter().any(|s| n.ends_with(s))
}

/// Every module file under the given paths, sorted; files named directly are always taken.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => InputError::Missing { path: p.clone() },
            _ => InputError::Io {
                path: p.clone(),
                source: e,
            },
        })?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let rd = std::fs::read_dir(dir).map_err(|e| InputError::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    for e in rd {
        let e = e.map_err(|e| InputError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let ft = e.file_type().map_err(|err| InputError::Io {
            path: e.path(),
            source: err,
        })?;
        let p = e.path();
        if ft.is_dir() {
            walk(&p, out)?;
        } else if is_module_name(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// The kernel's fallback module name: the file name without suffixes, `-` as `_`.
pub fn stem(p: &Path) -> String {
    let n = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = MODULE_SUFFIXES
        .iter()
        .find_map(|s| n.strip_suffix(s))
        .unwrap_or(&n);
    base.replace('-', "_")
}

/// Reads a module, decompressing `.xz`, `.gz` and `.zst` by their magic bytes.
/// The error is a sentence about the file's content (the caller knows the path).
pub fn read_module(p: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(p).map_err(|e| format!("cannot read: {e}"))?;
    decompress(raw)
}

pub fn decompress(raw: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let limited = |r: &mut dyn Read, out: &mut Vec<u8>| -> Result<(), String> {
        r.take(MAX_MODULE_BYTES + 1)
            .read_to_end(out)
            .map_err(|e| e.to_string())?;
        if out.len() as u64 > MAX_MODULE_BYTES {
            return Err("decompresses to more than 1 GiB".into());
        }
        Ok(())
    };
    if raw.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        let mut input = std::io::Cursor::new(&raw);
        lzma_rs::xz_decompress(&mut input, &mut out).map_err(|e| format!("bad xz data: {e}"))?;
        Ok(out)
    } else if raw.starts_with(&[0x1f, 0x8b]) {
        limited(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out)
            .map_err(|e| format!("bad gzip data: {e}"))?;
        Ok(out)
    } else if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let mut d = ruzstd::decoding::StreamingDecoder::new(&raw[..])
            .map_err(|e| format!("bad zstd data: {e}"))?;
        limited(&mut d, &mut out).map_err(|e| format!("bad zstd data: {e}"))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}
