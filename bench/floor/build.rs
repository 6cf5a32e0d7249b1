//! Linked like the component (the root build.rs): a 256 KiB stack instead of Rust's
//! default 1 MiB, so the floor's instance has as little linear memory for the host to
//! zero between requests as the component's. A floor that pays an avoidable cost is not
//! the floor.

fn main() {
    // The contract floor calls the chat-service's numbering script by its SHA-1, computed
    // as the root build.rs computes it.
    let script = std::fs::read("../../src/numbering.lua").expect("src/numbering.lua is readable");
    let sha1 = sha1_smol::Sha1::from(&script).digest().to_string();
    println!("cargo::rustc-env=NUMBERING_SCRIPT_SHA1={sha1}");
    println!("cargo::rerun-if-changed=../../src/numbering.lua");

    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-link-arg-cdylib=-zstack-size={}", 256 * 1024);
    }
}
