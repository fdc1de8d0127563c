#!/usr/bin/env bash
# Builds the C library (crates/mailslot-ffi) and installs it under PREFIX in cargo-c's layout:
#
#   PREFIX/lib/libmailslot.so -> libmailslot.so.0 -> libmailslot.so.0.1.0   (soname .so.0)
#   PREFIX/lib/libmailslot.a
#   PREFIX/include/mailslot/mailslot.h, win32.h
#   PREFIX/lib/pkgconfig/mailslot.pc
#
# Usage: bash scripts/install-c.sh [--debug] PREFIX
#   --debug  install the debug build (the tests use it: test.sh has built it already).
# Then: cc prog.c $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs mailslot)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
if [ "${1:-}" = "--debug" ]; then
    profile=debug
    shift
fi
if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: bash scripts/install-c.sh [--debug] PREFIX" >&2
    exit 2
fi
prefix=$(realpath -m "$1")

flags=(-p mailslot-ffi --lib)
[ "$profile" = release ] && flags+=(--release)
# Cargo names the artifacts it built (wherever the target directory is): take them from its
# JSON messages rather than guessing the path.
artifacts=$(cargo build "${flags[@]}" --message-format=json-render-diagnostics |
    grep -o '"[^"]*/libmailslot\.\(so\|a\)"' | tr -d '"' | sort -u)
so=$(grep '\.so$' <<<"$artifacts" | head -n1)
a=$(grep '\.a$' <<<"$artifacts" | head -n1)
if [ ! -f "$so" ] || [ ! -f "$a" ]; then
    echo "install-c.sh: cargo did not report libmailslot.so and libmailslot.a" >&2
    exit 1
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
major=${version%%.*}
# What a program linked with libmailslot.a needs besides it (rustc's
# --print native-static-libs for the Rust standard library on Linux).
libs_private="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

install -d "$prefix/lib/pkgconfig" "$prefix/include/mailslot"
install -m 0755 "$so" "$prefix/lib/libmailslot.so.$version"
ln -sfn "libmailslot.so.$version" "$prefix/lib/libmailslot.so.$major"
ln -sfn "libmailslot.so.$major" "$prefix/lib/libmailslot.so"
install -m 0644 "$a" "$prefix/lib/libmailslot.a"
install -m 0644 crates/mailslot-ffi/include/mailslot/*.h "$prefix/include/mailslot/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" -e "s|@LIBS_PRIVATE@|$libs_private|" \
    crates/mailslot-ffi/mailslot.pc.in >"$prefix/lib/pkgconfig/mailslot.pc"
echo "install-c.sh: installed libmailslot $version ($profile) under $prefix"
