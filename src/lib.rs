//! modverify: a cross-architecture kernel-module-loading verifier.
//!
//! Data flows one way: arch descriptor → build → artifacts → static check → initramfs →
//! QEMU boot → guest results → verdict → reports. Modules are listed in that order.
pub mod arch;
pub mod boot;
pub mod build;
pub mod check;
pub mod cli;
pub mod elf;
pub mod exit;
pub mod host;
pub mod image;
pub mod input;
pub mod proc;
pub mod qemu;
pub mod report;
#[doc(hidden)]
pub mod synth;
pub mod verdict;
