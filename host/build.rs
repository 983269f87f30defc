//! Builds the built-in forecast models (`guest-models/baseline`, `arima`, `mstl`, `fracast`,
//! `seasonal-naive`)
//! as WebAssembly components and hands them to the host crate, which embeds
//! them, so `cargo run` needs nothing but Rust.
//!
//! The guests are built by a nested `cargo build --target wasm32-wasip2` in a
//! target directory of their own (`<target>/guest-build`), so it never waits on
//! the lock of the outer build, and in the `guest` profile (release, LTO).
//!
//! It also compiles KEDA's External Scaler protocol (`proto/`) with protox, a
//! protobuf compiler in Rust, so no `protoc` binary is needed.

#[path = "build_support/guest_build.rs"]
mod guest_build;

use std::path::PathBuf;

const BUILTIN_MODELS: [&str; 5] = [
    "kedastral-baseline",
    "kedastral-arima",
    "kedastral-mstl",
    "kedastral-fracast",
    "kedastral-seasonal-naive",
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));

    for watched in ["guest-models", "wit", "Cargo.toml", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-changed=build_support/guest_build.rs");

    let proto_dir = workspace.join("proto");
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    let descriptors = protox::compile([proto_dir.join("externalscaler.proto")], [&proto_dir])
        .unwrap_or_else(|e| {
            eprintln!("error: proto/externalscaler.proto: {e}");
            std::process::exit(1);
        });
    tonic_prost_build::configure()
        .compile_fds(descriptors)
        .unwrap_or_else(|e| panic!("generating the gRPC code: {e}"));

    let builder = guest_build::GuestBuilder::for_workspace(&workspace);
    let built = match builder.build(&BUILTIN_MODELS) {
        Ok(built) => built,
        Err(message) => {
            // A plain message reads better than a panic with a backtrace.
            eprintln!("error: building the built-in models failed:\n{message}");
            std::process::exit(1);
        }
    };
    for (package, wasm) in BUILTIN_MODELS.iter().zip(built) {
        let name = package.trim_start_matches("kedastral-");
        let dest = out_dir.join(format!("{name}.wasm"));
        std::fs::copy(&wasm, &dest)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", wasm.display(), dest.display()));
    }
}
