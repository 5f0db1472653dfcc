//! Test-only code shared by the test crates (and the library's unit tests): the synthetic
//! ELF generator. Not part of the shipped library.
#![allow(dead_code)] // each test crate uses a different subset
pub use modverify::arch;
pub mod synth;
