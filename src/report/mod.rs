//! Turning results into things people and programs read. The only layer that formats.
pub mod html;
pub mod json;
pub mod junit;
pub mod kcidb;
pub mod progress;
pub mod results;
pub mod table;
