#!/usr/bin/env bash
# The Python package's tests (python/tests): builds the wheel with maturin and the workspace's
# cargo, installs it in a fresh venv, and runs pytest there with the CLI binary for interop.
#
# maturin, pytest and mypy (for stubtest) come from PyPI into venvs under the target
# directory. Without python3's venv and pip this prints "SKIP:" and, under CI=true, fails.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
tools="$target/py-tools"     # maturin, kept between runs
venv="$target/py-test-venv"  # made afresh on every run
wheels="$target/py-wheels"

skip() {
    if [ "${CI:-}" = true ]; then
        echo "test-python.sh: $1 (CI=true: failing)" >&2
        exit 1
    fi
    echo "test-python.sh: SKIP: $1; the Python package is not tested"
    exit 0
}

command -v python3 >/dev/null || skip "python3 is missing"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    skip "python3 is older than 3.11 (the package's abi3 floor)"
if [ ! -x "$tools/bin/maturin" ]; then
    rm -rf "$tools"
    python3 -m venv "$tools" 2>/dev/null || skip "python3 -m venv does not work (python3-venv)"
    "$tools/bin/pip" install -q 'maturin>=1.5,<2' || skip "cannot install maturin from PyPI"
fi

# The CLI as scripts/test.sh builds it (same features: nothing is rebuilt there).
cargo build -p mailslot-cli --features mailslot/tokio
rm -rf "$wheels" "$venv"
"$tools/bin/maturin" build --manifest-path python/Cargo.toml --out "$wheels"
python3 -m venv "$venv"
"$venv/bin/pip" install -q "$wheels"/mailslot-*.whl pytest mypy
MAILSLOT_CLI="$target/debug/mailslot" "$venv/bin/python" -m pytest python/tests \
    -p no:cacheprovider -rs
