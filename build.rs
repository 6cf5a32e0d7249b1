//! Build-time facts the component is compiled with.

fn main() {
    // EVALSHA names the numbering script by its SHA-1; computed from the very file that
    // `include_str!` embeds, so the two cannot drift.
    let script = std::fs::read("src/numbering.lua").expect("src/numbering.lua is readable");
    let sha1 = sha1_smol::Sha1::from(&script).digest().to_string();
    println!("cargo::rustc-env=NUMBERING_SCRIPT_SHA1={sha1}");
    println!("cargo::rerun-if-changed=src/numbering.lua");

    // `single_threaded_wasm`: the arena allocator (src/allocator.rs) is the global
    // allocator, which is sound only where the module has one thread. Stable rustc leaves
    // the unstable `atomics` feature out of `cfg(target_feature)`, so on stable
    // `wasm32-wasip1-threads` looks like `wasm32-wasip1` to a `cfg`: the target is named.
    println!("cargo::rustc-check-cfg=cfg(single_threaded_wasm)");
    let target = std::env::var("TARGET").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if target == "wasm32-wasip1" && !features.split(',').any(|f| f == "atomics") {
        println!("cargo::rustc-cfg=single_threaded_wasm");
    }

    // A 256 KiB stack instead of Rust's default 1 MiB. Spin keeps the first 2 MiB of a
    // pooled instance's linear memory resident and zeroes what the instance used before
    // handing the slot to the next request, and a wasm stack sits at the start of linear
    // memory, so its size is paid in a memset on every request: 17 pages (1,088 KiB)
    // with the default, 5 (320 KiB) with this. Measured in the test host, which keeps
    // memory resident as Spin does: about 35 µs less host CPU per request (bench/README.md).
    // Nothing the component does recurses on its input: a body is parsed into two flat
    // structs and serde_json skips unknown fields without recursing (tests/contract.rs
    // sends 100,000 levels of nesting), and the contract and persistence tests also pass
    // with a 16 KiB stack.
    // A link argument rather than a `.cargo/config.toml` flag, so that a RUSTFLAGS set in
    // the environment cannot silently drop it.
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-link-arg-cdylib=-zstack-size={}", 256 * 1024);
    }
}
