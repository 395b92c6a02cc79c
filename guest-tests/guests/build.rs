// Link the guest image with linker/guest.ld only for bare metal; on the host
// the binary is an empty stub so `cargo test --workspace` builds.
fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../linker");
    println!("cargo:rerun-if-changed={}", root.join("guest.ld").display());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-search={}", root.display());
        println!("cargo:rustc-link-arg-bins=-Tguest.ld");
    }
}
