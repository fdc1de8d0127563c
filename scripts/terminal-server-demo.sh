#!/usr/bin/env bash
# The terminal-server scenario mailslot was made for, on this machine (needs root):
# the host service holds the LAN port for the host; two users (created if missing:
# ms-demo-alice, ms-demo-bob) each run `mailslot --global chat` and share the host's MESSNGR;
# a popup "from the LAN" (a datagram to this host's port) reaches both, and a popup from
# one user to the other shows the sender's uid as the kernel reported it.
#
# It runs in a private tmux server on an unprivileged port with a private global directory,
# so it touches nothing of a real service. Watch it with the command it prints; Ctrl-C ends it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "terminal-server-demo: needs root (it creates users)" >&2; exit 2; }
command -v tmux >/dev/null || { echo "terminal-server-demo: needs tmux" >&2; exit 2; }

cargo build --release -q -p mailslot-cli
work=$(mktemp -d /tmp/mailslot-demo.XXXXXX)
chmod 755 "$work"
cp target/release/mailslot "$work/mailslot"
bin="$work/mailslot"
port=${DEMO_PORT:-21138}
sock="mailslot-demo-$$"
cleanup() { tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for user in ms-demo-alice ms-demo-bob; do
    id "$user" >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin "$user"
    install -d -m 700 -o "$user" "$work/$user"
done
common="MAILSLOT_GLOBAL_DIR=$work/global MAILSLOT_PORT=$port MAILSLOT_NETBIOS_NAME=TSERVER MAILSLOT_WORKGROUP=DEMO"
tmux -L "$sock" -f /dev/null new-session -d -s demo -x 200 -y 50 \
    "env $common $bin serve --system --global-dir $work/global --name-service-port $((port + 1)) --broadcast 127.255.255.255; sleep 600"
sleep 0.5
for user in ms-demo-alice ms-demo-bob; do
    from=${user#ms-demo-}
    tmux -L "$sock" split-window -t demo -h \
        "setpriv --reuid $user --regid $user --init-groups -- env $common MAILSLOT_DIR=$work/$user $bin --global chat --from ${from^^}"
done
tmux -L "$sock" select-layout -t demo even-horizontal
sleep 1.5
# A popup from "another host of the LAN": a datagram to this host's port.
env MAILSLOT_DIR="$work/lan" MAILSLOT_NETBIOS_NAME=HOSTB MAILSLOT_WORKGROUP=DEMO "$bin" \
    send MESSNGR "lunch at noon, everyone" --messenger --from CAROL --to-user DEMO \
    --to 127.0.0.1 --port "$port" --no-network
sleep 0.5
# Alice writes to this host's MESSNGR: Bob's window shows her uid.
tmux -L "$sock" send-keys -t demo.1 "hello bob, it's alice" Enter
sleep 1
for pane in 1 2; do
    echo "=== $( [ $pane = 1 ] && echo alice || echo bob )'s chat ==="
    tmux -L "$sock" capture-pane -p -t "demo.$pane" | grep -Ev '^\s*$|^│ *│$' | head -30
done
if [ -t 0 ]; then
    echo
    echo "Watch it live: tmux -L $sock attach -t demo   (Ctrl-C here ends the demo)"
    sleep 600
fi
