//! modverify: a cross-architecture kernel-module-loading verifier.
//!
//! Data flows one way: arch descriptor → build → artifacts → static check → initramfs →
//! QEMU boot → guest results → verdict → reports. Modules are listed in that order.
pub mod arch;
pub mod host;
pub mod proc;
pub mod hex;
pub mod failure;
pub mod outcome_kind;
pub mod exit;
pub mod files;
pub mod compiler_plugin;
pub mod cross_gcc;
pub mod debian_apt;
pub mod kernel_build;
pub mod input;
pub mod depmod;
pub mod installed;
pub mod elf;
pub mod check;
pub mod kabi;
pub mod image;
pub mod batch;
pub mod qemu;
pub mod boot;
pub mod verdict;
pub mod outcome;
pub mod pipeline;
pub mod results;
pub mod baseline;
pub mod report;
pub mod cli;
/// The synthetic ELF generator, for the unit tests only (it lives with the integration tests).
#[cfg(test)]
#[allow(dead_code)]
#[path = "../tests/support/synth.rs"]
mod synth;
