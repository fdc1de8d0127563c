//! Gives libmailslot.so its soname, so programs linked against it load `libmailslot.so.0` (the
//! install script's layout: libmailslot.so -> libmailslot.so.0 -> libmailslot.so.0.1.0).
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmailslot.so.0");
}
