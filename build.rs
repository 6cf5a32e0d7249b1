//! Computes the SHA-1 of the numbering script at build time: EVALSHA names a script by
//! it, and a hash computed from the very file that `include_str!` embeds cannot drift.

fn main() {
    let script = std::fs::read("src/numbering.lua").expect("src/numbering.lua is readable");
    let sha1 = sha1_smol::Sha1::from(&script).digest().to_string();
    println!("cargo::rustc-env=NUMBERING_SCRIPT_SHA1={sha1}");
    println!("cargo::rerun-if-changed=src/numbering.lua");
}
