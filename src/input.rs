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

/// Compressed files that decompress to more than this are refused (decompression bombs).
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
/// (What was noticed on the way, see [`discover_noted`], is dropped.)
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    discover_noted(paths).map(|d| d.paths)
}

/// The module files under some paths, and what a person should know about how they were
/// found.
#[derive(Debug, Default)]
pub struct Discovered {
    /// Sorted, each file once.
    pub paths: Vec<PathBuf>,
    /// A directory reached twice (a second symlink to it, or a loop), read once; a symlink
    /// to nothing.
    pub notes: Vec<String>,
}

/// Every module file under the given paths. Symlinked directories are followed, as a module
/// tree assembled from links is still the tree (`kernel/fs -> /elsewhere/fs`), each directory
/// once: a loop or a second path to a directory already read is read no more, and noted. A
/// file reached by two paths is taken once. As depmod does, symlinks named `build` or
/// `source` (to the kernel's headers and tree) are not followed.
pub fn discover_noted(paths: &[PathBuf]) -> Result<Discovered, InputError> {
    let mut w = Walk::default();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => InputError::Missing { path: p.clone() },
            _ => InputError::Io {
                path: p.clone(),
                source: e,
            },
        })?;
        if meta.is_dir() {
            w.dir(p, &meta)?;
        } else {
            w.out.paths.push(p.clone());
        }
    }
    w.out.paths.sort();
    w.out.paths.dedup();
    Ok(w.out)
}

#[derive(Default)]
struct Walk {
    out: Discovered,
    /// (device, inode) of every directory read, and the path it was first read by.
    dirs: std::collections::HashMap<(u64, u64), PathBuf>,
    files: std::collections::HashMap<(u64, u64), PathBuf>,
}

impl Walk {
    fn dir(&mut self, dir: &Path, meta: &std::fs::Metadata) -> Result<(), InputError> {
        use std::os::unix::fs::MetadataExt;
        if let Some(first) = self.dirs.get(&(meta.dev(), meta.ino())) {
            let how = if dir.starts_with(first) {
                "a symlink loop back to"
            } else {
                "the same directory as"
            };
            self.out.notes.push(format!(
                "{}: {how} {}, read once",
                dir.display(),
                first.display()
            ));
            return Ok(());
        }
        self.dirs
            .insert((meta.dev(), meta.ino()), dir.to_path_buf());
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| InputError::Io { path, source }
        };
        let mut entries = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io(dir))?;
        // Sorted, so that which of two paths to one directory is "first" does not depend on
        // the file system's order.
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let ft = e.file_type().map_err(io(&p))?;
            let meta = if ft.is_symlink() {
                if matches!(e.file_name().to_str(), Some("build" | "source")) {
                    continue;
                }
                match std::fs::metadata(&p) {
                    Ok(m) => m,
                    Err(_) if is_module_name(&p) => {
                        self.out.notes.push(format!(
                            "{}: a symlink to nothing ({}), skipped",
                            p.display(),
                            std::fs::read_link(&p)
                                .map(|t| t.display().to_string())
                                .unwrap_or_default()
                        ));
                        continue;
                    }
                    Err(_) => continue,
                }
            } else {
                e.metadata().map_err(io(&p))?
            };
            if meta.is_dir() {
                self.dir(&p, &meta)?;
            } else if is_module_name(&p) {
                use std::os::unix::fs::MetadataExt;
                if self.files.contains_key(&(meta.dev(), meta.ino())) {
                    continue;
                }
                self.files.insert((meta.dev(), meta.ino()), p.clone());
                self.out.paths.push(p);
            }
        }
        Ok(())
    }
}

/// The kernel's fallback module name for a file: depmod's ([`crate::depmod::name`]: the
/// file name up to its first `.`, `-` as `_`).
pub fn stem(p: &Path) -> String {
    crate::depmod::name(p)
}

/// Reads a module, decompressing `.xz`, `.gz` and `.zst` by their magic bytes.
/// The error is a sentence about the file's content (the caller knows the path).
pub fn read_module(p: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(p).map_err(|e| format!("cannot read: {e}"))?;
    decompress(raw)
}

/// Decompresses `.xz`, `.gz` and `.zst` data (told apart by magic bytes); anything else is
/// returned as it is. Refuses output above 1 GiB; bad data is an error sentence, never a panic.
pub fn decompress(raw: Vec<u8>) -> Result<Vec<u8>, String> {
    decompress_limited(raw, MAX_MODULE_BYTES)
}

const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
const GZ_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// A compression format, by its magic bytes: of modules, kernel images and initramfs
/// payloads alike (the one home of the magic numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    pub fn of(head: &[u8]) -> Option<Self> {
        if head.starts_with(XZ_MAGIC) {
            Some(Compression::Xz)
        } else if head.starts_with(GZ_MAGIC) {
            Some(Compression::Gzip)
        } else if head.starts_with(ZSTD_MAGIC) {
            Some(Compression::Zstd)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }
}

/// Ratio assumed for the first allocation when the data records no size (kernel modules
/// compress about 4:1 with any of the three formats); the buffer doubles when it is too small.
const GUESSED_RATIO: usize = 4;

/// `decompress` with the bomb limit as a parameter, so tests need not inflate 1 GiB.
fn decompress_limited(raw: Vec<u8>, limit: u64) -> Result<Vec<u8>, String> {
    match Compression::of(&raw) {
        Some(Compression::Xz) => xz(&raw, limit).map_err(|e| e.describe("xz", limit)),
        Some(Compression::Gzip) => gzip(&raw, limit).map_err(|e| e.describe("gzip", limit)),
        Some(Compression::Zstd) => zstd(&raw, limit).map_err(|e| e.describe("zstd", limit)),
        None => Ok(raw),
    }
}

/// Why one decompression failed, before the format name is put in front.
enum DecompressError {
    Bad(String),
    TooBig,
    Alloc(usize),
}

impl DecompressError {
    fn describe(self, format: &str, limit: u64) -> String {
        match self {
            DecompressError::Bad(e) => format!("bad {format} data: {e}"),
            DecompressError::TooBig => {
                format!(
                    "{format} data decompresses to more than {}",
                    size_text(limit)
                )
            }
            DecompressError::Alloc(n) => {
                format!("cannot allocate {n} bytes to decompress {format} data")
            }
        }
    }
}

fn size_text(n: u64) -> String {
    if n >= 1 << 30 && n % (1 << 30) == 0 {
        format!("{} GiB", n >> 30)
    } else {
        format!("{n} bytes")
    }
}

/// An empty buffer with room for `want` bytes (at most `limit` + 1, enough to notice a bomb).
/// A failed allocation is an error rather than an abort: `want` may come from hostile data.
fn output_buffer(want: u64, limit: u64) -> Result<Vec<u8>, DecompressError> {
    let n = want.min(limit.saturating_add(1)) as usize;
    let mut out = Vec::new();
    out.try_reserve_exact(n)
        .map_err(|_| DecompressError::Alloc(n))?;
    Ok(out)
}

/// Reads a decoder to its end into `out`, which may grow, failing past `limit` bytes.
fn read_limited(r: impl Read, out: &mut Vec<u8>, limit: u64) -> Result<(), DecompressError> {
    r.take(limit.saturating_add(1))
        .read_to_end(out)
        .map_err(|e| DecompressError::Bad(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(DecompressError::TooBig);
    }
    Ok(())
}

/// liblzma's stream decoder straight into the output buffer, sized from the stream's index.
fn xz(raw: &[u8], limit: u64) -> Result<Vec<u8>, DecompressError> {
    use liblzma::stream::{Action, Status, Stream, CONCATENATED};
    let want = match xz_recorded_size(raw) {
        // The index is checked against the blocks, so a size above the limit is a bomb or a lie.
        Some(n) if n > limit => return Err(DecompressError::TooBig),
        Some(n) => n,
        None => raw.len().saturating_mul(GUESSED_RATIO) as u64,
    };
    let mut out = output_buffer(want, limit)?;
    // The dictionary never needs to be larger than the largest output accepted.
    let mut stream = Stream::new_stream_decoder(MAX_MODULE_BYTES, CONCATENATED)
        .map_err(|e| DecompressError::Bad(e.to_string()))?;
    loop {
        if out.len() == out.capacity() {
            if out.len() as u64 > limit {
                return Err(DecompressError::TooBig);
            }
            let more = out.len().max(1 << 16) as u64;
            let more = more.min(limit + 1 - out.len() as u64) as usize;
            out.try_reserve_exact(more)
                .map_err(|_| DecompressError::Alloc(out.len() + more))?;
        }
        let input = &raw[stream.total_in() as usize..];
        match stream.process_vec(input, &mut out, Action::Finish) {
            Ok(Status::StreamEnd) => break,
            // No progress with room left in the output: the input ended early.
            Ok(Status::MemNeeded) => {
                return Err(DecompressError::Bad("unexpected end of input".into()))
            }
            Ok(_) => {}
            Err(e) => return Err(DecompressError::Bad(e.to_string())),
        }
    }
    if out.len() as u64 > limit {
        return Err(DecompressError::TooBig);
    }
    Ok(out)
}

/// The uncompressed size the index of the (last) xz stream records, if the footer and index
/// parse. Only a size to allocate: liblzma checks the index when it decodes the stream.
fn xz_recorded_size(raw: &[u8]) -> Option<u64> {
    // Stream padding: NUL bytes in multiples of four after the footer.
    let mut end = raw.len();
    while end >= 4 && raw[end - 4..end] == [0; 4] {
        end -= 4;
    }
    let footer = raw.get(end.checked_sub(12)?..end)?;
    if footer[10..12] != *b"YZ" {
        return None;
    }
    let backward_size = u32::from_le_bytes(footer[4..8].try_into().ok()?) as usize;
    let index_start = (end - 12).checked_sub(backward_size.checked_add(1)?.checked_mul(4)?)?;
    let (&indicator, mut index) = raw[index_start..end - 12].split_first()?;
    if indicator != 0 {
        return None;
    }
    let records = xz_varint(&mut index)?;
    let mut total = 0u64;
    for _ in 0..records {
        xz_varint(&mut index)?; // unpadded (compressed) size
        total = total.checked_add(xz_varint(&mut index)?)?;
    }
    Some(total)
}

/// xz's multibyte integer: seven bits a byte, least significant first, at most nine bytes.
fn xz_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..9 {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// zlib-rs through flate2, sized from the gzip trailer's ISIZE (the size modulo 2^32).
fn gzip(raw: &[u8], limit: u64) -> Result<Vec<u8>, DecompressError> {
    let isize = raw
        .len()
        .checked_sub(4)
        .map(|at| u32::from_le_bytes(raw[at..].try_into().expect("four bytes")));
    // Deflate cannot expand more than 1032:1, which bounds a hostile ISIZE.
    let want = match isize {
        Some(n) => u64::from(n).min((raw.len() as u64).saturating_mul(1032)),
        None => 0,
    };
    let mut out = output_buffer(want, limit)?;
    read_limited(flate2::bufread::GzDecoder::new(raw), &mut out, limit)?;
    Ok(out)
}

thread_local! {
    /// One zstd context per thread, reused: creating one costs a tenth of decoding a module.
    static ZSTD_CONTEXT: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// zstd in one call into an exactly sized buffer when the data is a single frame that records
/// its size (what `zstd FILE` writes); streamed otherwise.
fn zstd(raw: &[u8], limit: u64) -> Result<Vec<u8>, DecompressError> {
    use zstd::zstd_safe;
    let single_frame = zstd_safe::find_frame_compressed_size(raw) == Ok(raw.len());
    let recorded = zstd_safe::get_frame_content_size(raw).ok().flatten();
    match recorded {
        // The decoder checks the recorded size, so one above the limit is a bomb or a lie.
        Some(n) if n > limit => Err(DecompressError::TooBig),
        Some(n) if single_frame => {
            let mut out = output_buffer(n, limit)?;
            ZSTD_CONTEXT
                .with_borrow_mut(|slot| {
                    let d = match slot {
                        Some(d) => d,
                        None => slot.insert(zstd::bulk::Decompressor::new()?),
                    };
                    d.decompress_to_buffer(raw, &mut out)
                })
                .map_err(|e| DecompressError::Bad(e.to_string()))?;
            Ok(out)
        }
        _ => {
            let mut out = output_buffer(raw.len().saturating_mul(GUESSED_RATIO) as u64, limit)?;
            let d = zstd::stream::read::Decoder::with_buffer(raw)
                .map_err(|e| DecompressError::Bad(e.to_string()))?;
            read_limited(d, &mut out, limit)?;
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// 200 KiB that compress about as well as a module (3-5:1): words in a random order.
    fn sample() -> Vec<u8> {
        const WORDS: [&[u8]; 8] = [
            b"module_layout ",
            b"\x00__crc_",
            b"printk",
            b"GPL\x00",
            b"\x7fELF\x02\x01",
            b"kmalloc_caches ",
            b"\x00\x00\x00\x00",
            b"vermagic=6.12 ",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut out = Vec::new();
        while out.len() < 200 * 1024 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.extend_from_slice(WORDS[(state % 8) as usize]);
            out.push((state >> 32) as u8);
        }
        out
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        liblzma::encode_all(data, 6).unwrap()
    }
    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }
    /// One-shot zstd: the frame records its size (the in-place path).
    fn zstd_sized(data: &[u8]) -> Vec<u8> {
        zstd::bulk::compress(data, 3).unwrap()
    }
    /// Streamed zstd: no size in the frame (the streaming path, as `cat x | zstd` writes).
    fn zstd_streamed(data: &[u8]) -> Vec<u8> {
        let out = zstd::stream::encode_all(data, 3).unwrap();
        assert!(matches!(
            zstd::zstd_safe::get_frame_content_size(&out),
            Ok(None)
        ));
        out
    }
    /// Two xz streams and stream padding: what `cat a.xz b.xz` gives; `xz -dc` accepts it.
    fn xz_concatenated(data: &[u8]) -> Vec<u8> {
        let (a, b) = data.split_at(data.len() / 3);
        let mut out = xz(a);
        out.extend_from_slice(&[0; 8]);
        out.extend(xz(b));
        out
    }

    type Encoder = fn(&[u8]) -> Vec<u8>;
    const ENCODERS: [(&str, Encoder); 5] = [
        ("xz", xz),
        ("xz concatenated", xz_concatenated),
        ("gzip", gzip),
        ("zstd sized", zstd_sized),
        ("zstd streamed", zstd_streamed),
    ];

    #[test]
    fn round_trip_every_format() {
        let data = sample();
        for (name, enc) in ENCODERS {
            let packed = enc(&data);
            assert!(
                packed.len() < data.len() / 2,
                "{name}: sample barely compresses"
            );
            assert_eq!(decompress(packed), Ok(data.clone()), "{name}");
        }
    }

    #[test]
    fn output_is_allocated_once_when_the_size_is_recorded() {
        let data = sample();
        for (name, enc) in [("xz", xz as Encoder), ("gzip", gzip), ("zstd", zstd_sized)] {
            let out = decompress(enc(&data)).unwrap();
            assert_eq!(out.capacity(), data.len(), "{name}");
        }
    }

    #[test]
    fn uncompressed_data_is_returned_as_is() {
        let data = b"\x7fELF not compressed".to_vec();
        let ptr = data.as_ptr();
        let out = decompress(data).unwrap();
        assert_eq!(out.as_ptr(), ptr, "no copy");
    }

    #[test]
    fn truncated_data_is_an_error() {
        let data = sample();
        for (name, enc) in ENCODERS {
            let packed = enc(&data);
            // From just past the magic bytes to one byte short, in uneven steps.
            for cut in (6..packed.len())
                .step_by(packed.len() / 40)
                .chain([packed.len() - 1])
            {
                let r = decompress(packed[..cut].to_vec());
                assert!(r.is_err(), "{name} cut at {cut}/{}: {r:?}", packed.len());
            }
        }
        let e = decompress(xz(&data)[..4000].to_vec()).unwrap_err();
        assert!(e.starts_with("bad xz data: "), "{e}");
    }

    #[test]
    fn corrupt_data_never_panics() {
        let data = sample();
        for (_, enc) in ENCODERS {
            let packed = enc(&data);
            for at in (0..packed.len()).step_by(packed.len() / 100) {
                let mut bad = packed.clone();
                bad[at] ^= 0x55;
                // Ok or Err; some formats carry no checksum to tell.
                let _ = decompress(bad);
            }
        }
        for junk in [XZ_MAGIC, GZ_MAGIC, ZSTD_MAGIC] {
            let mut bad = junk.to_vec();
            bad.extend_from_slice(&[0xff; 64]);
            assert!(decompress(bad).is_err());
        }
        // This thread's zstd context, reused after all those errors, still decodes.
        assert_eq!(decompress(zstd_sized(&data)), Ok(data));
    }

    #[test]
    fn output_above_the_limit_is_refused() {
        let data = sample();
        let n = data.len() as u64;
        for (name, enc) in ENCODERS {
            let packed = enc(&data);
            assert_eq!(
                decompress_limited(packed.clone(), n).as_ref(),
                Ok(&data),
                "{name}: exactly at the limit"
            );
            let e = decompress_limited(packed, n - 1).unwrap_err();
            assert!(
                e.ends_with(&format!("data decompresses to more than {} bytes", n - 1)),
                "{name}: {e}"
            );
        }
    }

    #[test]
    fn limit_holds_when_the_recorded_size_lies() {
        // A gzip trailer may claim any size (ISIZE); the decoder must still stop at the limit.
        let data = sample();
        let mut packed = gzip(&data);
        let at = packed.len() - 4;
        packed[at..].copy_from_slice(&16u32.to_le_bytes());
        let e = decompress_limited(packed, 1000).unwrap_err();
        assert_eq!(e, "gzip data decompresses to more than 1000 bytes");
    }

    #[test]
    fn default_limit_is_one_gib() {
        assert_eq!(
            DecompressError::TooBig.describe("xz", MAX_MODULE_BYTES),
            "xz data decompresses to more than 1 GiB"
        );
    }
}
