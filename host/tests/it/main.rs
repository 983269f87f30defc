//! Integration tests, in one binary: real `.wasm` components built from
//! source, run through the real runtime and the real `kedastral` binary.

mod cli;
mod contract;
mod hostile;
mod support;
