#!/usr/bin/env bash
# The project's test command (README): builds everything and runs every test, then prints
# which tests skipped and why, and one line "N passed, N failed, N skipped, N ignored".
#
# Third-party peers (tshark, Samba's nmbd and python3-samba, scapy) and root-only tests
# (network namespaces, other users) skip when their tool or privilege is missing, except under
# CI (CI=true), where a missing peer is a failure. `.ci/run` installs the peers first. The
# harness counts a skipped test as passed and hides its "SKIP:" line, so each skip is also
# written to the file named by MAILSLOT_TEST_SKIPS (crates/mailslot/tests/common/skip.rs), and
# the summary counts those tests as skipped instead of passed.
#
# Arguments, if any, replace `--workspace` (e.g. `-p mailslot-cli --test packaging`) and leave
# out the Python package's tests (scripts/test-python.sh, whose pytest counts join the summary).
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp /tmp/mailslot-test-log.XXXXXX)
MAILSLOT_TEST_SKIPS=$(mktemp /tmp/mailslot-test-skips.XXXXXX)
export MAILSLOT_TEST_SKIPS

# The summary of the `cargo test` output in $log and the skips in $MAILSLOT_TEST_SKIPS.
# Per test binary (a "Running" or "Doc-tests" line of cargo): the harness's own counts are its
# last "test result:" line (captured output printed before it may hold other such lines), and
# the first "test NAME ... RESULT" lines after "running N tests" say which tests passed. A
# binary that died before its result line counts its unreported tests as failed. A test that
# skipped any part of itself and passed counts as skipped, not passed.
summary() {
    awk '
        FILENAME == ARGV[1] {
            # A skip: "<test binary> <test>: <why>".
            bin = $1; rest = substr($0, length($1) + 2); i = index(rest, ": ")
            key = bin SUBSEP substr(rest, 1, i - 1); why = substr(rest, i + 2)
            if (!(key in skip)) { order[++nskips] = key; skip[key] = why }
            else if (index(skip[key], why) == 0) skip[key] = skip[key] "; " why
            next
        }
        function result(name, r) {
            res[bin SUBSEP name] = r; seen[bin]++
            if (seen[bin] == want[bin]) state = "done"
        }
        /^ +Running / {
            bin = $NF; gsub(/[()]/, "", bin); n = split(bin, parts, "/"); bin = parts[n]
            l = $0; sub(/^ +Running /, "", l); sub(/ \([^(]*\)$/, "", l)
            label[bin] = l; bins[++nbins] = bin; state = "start"; next
        }
        /^ +Doc-tests / {
            bin = "doc-tests:" $2; label[bin] = "doc-tests " $2; bins[++nbins] = bin
            state = "start"; next
        }
        state == "start" && /^running [0-9]+ tests?$/ {
            want[bin] = $2; seen[bin] = 0; state = want[bin] ? "results" : "done"; next
        }
        state == "results" && /^test .+ \.\.\. / {
            name = $2; r = $0; sub(/^test .+ \.\.\. /, "", r)
            if (r == "ok" || r == "FAILED" || r ~ /^ignored/) result(name, r)
            else pending = name     # --test-threads=1: the result may come on a later line
            next
        }
        state == "results" && pending != "" && ($0 == "ok" || $0 == "FAILED" || /^ignored/) {
            result(pending, $0); pending = ""; next
        }
        # pytest (scripts/test-python.sh): its own counts, and its skips with -rs.
        /^test-python\.sh: SKIP: / {
            r = $0; sub(/^test-python\.sh: SKIP: /, "", r)
            PYS++; skipped = skipped "  python/tests (all of them): " r "\n"; next
        }
        /^SKIPPED \[[0-9]+\] / {
            r = $0; sub(/^SKIPPED \[[0-9]+\] /, "", r); skipped = skipped "  " r "\n"; next
        }
        /^=+ .* in [0-9.]+s.* =+$/ && /passed|failed|skipped|error/ {
            line = $0; gsub(/[=,]/, " ", line); n = split(line, w, " ")
            for (k = 2; k <= n; k++) {
                if (w[k] == "passed") PYP += w[k - 1]
                if (w[k] == "failed" || w[k] ~ /^errors?$/) PYF += w[k - 1]
                if (w[k] == "skipped") PYS += w[k - 1]
            }
            next
        }
        bin != "" && /^test result: / {
            line = $0; gsub(/[;.]/, "", line); split(line, w, " ")
            for (k = 1; k in w; k++) {
                if (w[k] == "passed") p[bin] = w[k - 1]
                if (w[k] == "failed") f[bin] = w[k - 1]
                if (w[k] == "ignored") ig[bin] = w[k - 1]
            }
            done[bin] = 1
        }
        END {
            for (b = 1; b <= nbins; b++) {
                bin = bins[b]
                if (done[bin]) { P += p[bin]; F += f[bin]; I += ig[bin]; continue }
                ok = 0; ign = 0
                for (key in res) {
                    split(key, kk, SUBSEP)
                    if (kk[1] != bin) continue
                    if (res[key] == "ok") ok++
                    else if (res[key] ~ /^ignored/) ign++
                }
                if (want[bin] == "") continue    # no test ran (e.g. the build failed)
                P += ok; I += ign; F += want[bin] - ok - ign
                dead = dead sprintf("  %s: no result line after %d of %d tests\n", \
                    label[bin], seen[bin], want[bin])
            }
            S = 0
            for (s = 1; s <= nskips; s++) {
                key = order[s]; split(key, kk, SUBSEP)
                shown = ((kk[1] in label) ? label[kk[1]] : kk[1]) " " kk[2]
                if (res[key] == "ok") { S++; skipped = skipped "  " shown ": " skip[key] "\n" }
                else other = other sprintf("  %s (%s): %s\n", shown, \
                    (key in res) ? res[key] : "result not found", skip[key])
            }
            P -= S; P += PYP; F += PYF; S += PYS
            if (dead != "") printf "Test binaries that died (unreported tests failed):\n%s", dead
            if (other != "")
                printf "Skips in tests that did not pass (not counted as skipped):\n%s", other
            if (skipped != "")
                printf "Skipped (a tool or privilege is missing; a failure under CI=true):\n%s", \
                    skipped
            printf "%d passed, %d failed, %d skipped, %d ignored\n", P, F, S, I
        }
    ' "$MAILSLOT_TEST_SKIPS" "$log"
}

# On any exit (a failed cargo test included: set -e), print the summary and keep the status.
finish() {
    local status=$?
    if [ -s "$log" ]; then
        echo
        summary || true
    fi
    rm -f "$log" "$MAILSLOT_TEST_SKIPS"
    exit "$status"
}
trap finish EXIT

# scapy, a second independent encoder of NetBIOS datagrams, lives in a local venv.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import scapy' 2>/dev/null; then
    if python3 -m venv .venv 2>/dev/null && .venv/bin/pip install -q scapy; then
        echo "test.sh: scapy installed in .venv"
    else
        echo "test.sh: SKIP: could not set up .venv with scapy; its interop tests will skip"
    fi
fi

if [ $# -eq 0 ]; then
    set -- --workspace
    all=1
    cargo build --workspace --all-targets --features mailslot/tokio
fi
cargo test "$@" --no-fail-fast --features mailslot/tokio \
    -- --test-threads="${TEST_THREADS:-4}" 2>&1 | tee "$log"
if [ -n "${all:-}" ]; then
    bash scripts/test-python.sh 2>&1 | tee -a "$log"
fi
