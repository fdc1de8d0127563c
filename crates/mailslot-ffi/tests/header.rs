//! `include/mailslot/mailslot.h` is what cbindgen makes of this crate now: a change to the C
//! API that was not regenerated fails here. `MAILSLOT_UPDATE_HEADER=1 cargo test -p
//! mailslot-ffi --test header` rewrites it.

use std::path::Path;

#[test]
fn header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    // The crate root and the modules it declares; no `cargo metadata` (dependencies add
    // nothing to the C API).
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen could not read the crate");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    let path = crate_dir.join("include/mailslot/mailslot.h");
    if std::env::var_os("MAILSLOT_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "{} is out of date: run MAILSLOT_UPDATE_HEADER=1 cargo test -p mailslot-ffi --test \
         header, and commit the result",
        path.display()
    );
}
