//! Turning results into things people and programs read. The only layer that formats.
pub mod html;
pub mod json;
pub mod junit;
pub mod kcidb;
pub mod progress;
pub mod results;
pub mod table;

/// The kernel's messages for one module of a results.json: a runtime outcome carries them
/// itself, a static report inside its problems.
pub fn kernel_messages(m: &serde_json::Value) -> Vec<String> {
    let direct = m["kernel_messages"]
        .as_array()
        .into_iter()
        .flatten()
        .cloned();
    let from_problems = m["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["kernel_messages"].as_array().cloned().unwrap_or_default());
    direct
        .chain(from_problems)
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// The details of the static export-table errors of one arch's entry in a results.json.
pub fn export_table_errors(arch: &serde_json::Value) -> Vec<String> {
    arch["check"]["exports"]["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["severity"] == "error")
        .filter_map(|p| p["detail"].as_str().map(str::to_string))
        .collect()
}
