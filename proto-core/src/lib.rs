//! weft's sans-IO core. See the crate docs in `mux` for the contract.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod mux;
pub mod time;
pub mod wire;
