//! Turning results into things people and programs read. The only layer that formats.
pub mod json;
pub mod progress;
pub mod table;
