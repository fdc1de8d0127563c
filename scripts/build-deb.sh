#!/usr/bin/env bash
# Builds the .deb of the mailslot command (crates/mailslot-cli, [package.metadata.deb]):
# the release binary, then its man pages and shell completions, written by that binary into
# $CARGO_TARGET_DIR/release/assets (default target/release/assets), then
# `cargo deb --no-build`.
# Needs cargo-deb (`cargo install cargo-deb --locked`). Prints the .deb's path last.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deb >/dev/null; then
    echo "build-deb.sh: cargo-deb is not installed (cargo install cargo-deb --locked)" >&2
    exit 1
fi
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked -p mailslot-cli
bin="$target/release/mailslot"

# Beside the binary: cargo-deb finds target/release/ paths in any CARGO_TARGET_DIR.
assets="$target/release/assets"
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
# mailslot(1), and mailslot-COMMAND(1) for every command its --help lists.
"$bin" man | gzip -9n > "$assets/man/mailslot.1.gz"
for command in $("$bin" --help | awk '/^Commands:/ {on = 1; next} on && /^$/ {exit} on {print $1}'); do
    [ "$command" = help ] && continue
    "$bin" man "$command" | gzip -9n > "$assets/man/mailslot-$command.1.gz"
done
"$bin" completions bash > "$assets/completions/mailslot.bash"
"$bin" completions zsh > "$assets/completions/_mailslot"
"$bin" completions fish > "$assets/completions/mailslot.fish"

mkdir -p "$target/debian"
cargo deb --no-build --locked -p mailslot-cli --output "$target/debian/"
