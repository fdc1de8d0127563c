#!/usr/bin/env bash
# The project's test command (README): builds everything and runs every test.
#
# Third-party peers (tshark, Samba's nmbd and python3-samba, scapy) and root-only tests
# (network namespaces, other users) skip with a "SKIP:" line when their tool or privilege is
# missing, except under CI (CI=true), where a missing peer is a failure. `.ci/run` installs
# the peers first.
set -euo pipefail
cd "$(dirname "$0")/.."

# scapy, a second independent encoder of NetBIOS datagrams, lives in a local venv.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import scapy' 2>/dev/null; then
    if python3 -m venv .venv 2>/dev/null && .venv/bin/pip install -q scapy; then
        echo "test.sh: scapy installed in .venv"
    else
        echo "test.sh: SKIP: could not set up .venv with scapy; its interop tests will skip"
    fi
fi

cargo build --workspace --all-targets --features mailslot/tokio
cargo test --workspace --no-fail-fast --features mailslot/tokio -- --test-threads="${TEST_THREADS:-4}"
bash scripts/test-python.sh
