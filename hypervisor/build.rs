// Link the EL2 image with our linker script only when building for bare metal;
// host builds (unit tests) link normally.
fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../linker");
    println!(
        "cargo:rerun-if-changed={}",
        root.join("hypervisor.ld").display()
    );
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-search={}", root.display());
        println!("cargo:rustc-link-arg-bins=-Thypervisor.ld");
    }
}
