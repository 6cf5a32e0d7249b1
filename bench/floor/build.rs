//! Linked like the component (the root build.rs): a 256 KiB stack instead of Rust's
//! default 1 MiB, so the floor's instance has as little linear memory for the host to
//! zero between requests as the component's. A floor that pays an avoidable cost is not
//! the floor.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-link-arg-cdylib=-zstack-size={}", 256 * 1024);
    }
}
