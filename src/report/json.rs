//! JSON for people to pipe: pretty-printed, never failing (the error is said in JSON).
pub fn to_string<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialize: {e}\"}}"))
}
