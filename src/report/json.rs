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
