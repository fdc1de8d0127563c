#!/usr/bin/env python3
"""Render the raw numbers of one `mailslot-bench all --out FILE.json` run.

    plot.py RESULTS.json --png docs/perf.png --md docs/perf.md [--json-path P] [--png-link L]

--png: the plot (fan-out cost per delivered 64-byte message vs k, wall and CPU, log y; latency
p50/p99 per placement, log y). Needs matplotlib.
--md: the tables of ratios against every peer and baseline, the performance targets (one row
each, with the measured figure and a met / not met verdict; "not measured in this run" when the
JSON lacks its records), and the conditions of the run. Everything in it comes from
the JSON (the bench writes the conditions as its first record, scenario `environment`), so the
file is regenerated, never edited. Standard library only.

Ratios are always mailslot / peer: below 1 means mailslot is cheaper or faster.
"""

import argparse
import datetime
import json
import sys

FANOUT_PEERS = ["mailslot", "unix-dgram", "zmq", "iceoryx2"]
LATENCY_PEERS = ["mailslot", "futex", "futex-yield", "eventfd", "unix-dgram", "zmq", "iceoryx2"]
PLOT_LATENCY_PEERS = ["mailslot", "futex", "eventfd", "zmq", "iceoryx2"]
PLACEMENTS = ["same-core", "cross-core", "unpinned"]
COLORS = {
    "mailslot": "#d62728",
    "unix-dgram": "#7f7f7f",
    "futex": "#2ca02c",
    "futex-yield": "#bcbd22",
    "eventfd": "#17becf",
    "zmq": "#1f77b4",
    "iceoryx2": "#9467bd",
}
MARKERS = {"mailslot": "o", "unix-dgram": "s", "zmq": "^", "iceoryx2": "D"}

TAKEOVER_BARE = "bare flock + bind: the next waiter has the lock and port"
TAKEOVER_BARE_RECV = "bare flock + bind: the next waiter receives"
TAKEOVER_HOLD = "role: the successor holds the role"
TAKEOVER_RECV = "role: the successor receives"
NETRECV_BARE = "bare"
NETRECV_FORWARD = "forward"
NETRECV_MAILSLOT = "mailslot"
NETRECV_STANDBY = "mailslot-standby"

# The targets (ratios within one run).
NETRECV_VS_BARE = 0.8
TAKEOVER_VS_BARE = 2.0
TAKEOVER_P99_MS = 5.0
BOUNDED_CAPACITY = 65536
BOUNDED_KS = [1, 2, 4, 8]
FANOUT_VS_DGRAM = 0.5
FANOUT_VS_ZMQ = 1.0
LATENCY_VS_FUTEX_YIELD = 1.05
RECV_INTO_VS_MEMCPY = 1.3
ONESHOT_VS_DGRAM = 2.0
IDLE_INSTANCES_VS_ONE = 1.5
NOT_MEASURED = "not measured in this run"


class Run:
    def __init__(self, records):
        self.env = next((r for r in records if r["scenario"] == "environment"), {})
        self.fanout = {}
        self.latency = {}
        self.takeover = {}
        self.takeover_loss = []
        self.netrecv = {}
        self.fanout_bounded = []
        self.oneshot = []
        self.large = []
        self.recv_into = []
        self.footprint = []
        for r in records:
            s = r["scenario"]
            if s == "fanout" and r.get("overflow", "default") != "default":
                self.fanout_bounded.append(r)
            elif s == "fanout":
                self.fanout[(r["peer"], r["size"], r["readers"])] = r
            elif s == "takeover-loss":
                self.takeover_loss.append(r)
            elif s == "oneshot":
                self.oneshot.append(r)
            elif s == "large":
                self.large.append(r)
            elif s == "recv-into":
                self.recv_into.append(r)
            elif s == "footprint":
                self.footprint.append(r)
            elif s == "latency":
                self.latency[(r["peer"], r["placement"])] = r
            elif s == "takeover":
                self.takeover[r["until"]] = r
            elif s == "netrecv":
                self.netrecv[r["receiver"]] = r
        self.sizes = sorted({k[1] for k in self.fanout})
        self.ks = sorted({k[2] for k in self.fanout})
        self.fanout_peers = [p for p in FANOUT_PEERS if any(k[0] == p for k in self.fanout)]
        self.placements = [p for p in PLACEMENTS if any(k[1] == p for k in self.latency)]
        self.latency_peers = [p for p in LATENCY_PEERS if any(k[0] == p for k in self.latency)]

    def fan(self, peer, size, k, field):
        r = self.fanout.get((peer, size, k))
        return None if r is None else r.get(field)

    def lat(self, peer, placement, field):
        r = self.latency.get((peer, placement))
        return None if r is None else r.get(field)


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def fmt_ratio(x):
    return "-" if x is None else f"{x:.2f}"


def fmt_ns(x):
    if x is None:
        return "-"
    return f"{x:.0f}"


def fmt_us(ns):
    return "-" if ns is None else f"{ns / 1000:.2f}"


def fmt_ms(ns):
    return "-" if ns is None else f"{ns / 1e6:.2f}"


def yes_no(ok):
    if ok is None:
        return "not measured (in part)"
    return "**met**" if ok else "**not met**"


def table(header, rows, align=None):
    align = align or ["---:"] * len(header)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


# ---- the verdicts ---------------------------------------------------------------------------


def all_of(checks):
    """Met when every check is met; not met when one is not; otherwise None (not measured)."""
    if any(c is False for c in checks):
        return False
    if not checks or any(c is None for c in checks):
        return None
    return True


def within(x, limit):
    return None if x is None else x <= limit


def bounded_block(run):
    """The bounded fan-out with `--overflow block` (64 B, capacity 64 KiB), by (peer, k)."""
    out = {}
    for r in run.fanout_bounded:
        if (
            r.get("overflow") == "block"
            and r.get("size") == 64
            and r.get("capacity") == BOUNDED_CAPACITY
        ):
            out[(r["peer"], r["readers"])] = r
    return out


def target_netrecv(run):
    what = (
        "netrecv, equal buffers, 3 senders, into a name with 4 instances: "
        f">= {NETRECV_VS_BARE}x the bare UDP loop"
    )
    bare, ms = run.netrecv.get(NETRECV_BARE), run.netrecv.get(NETRECV_MAILSLOT)
    if not (bare and ms):
        return None, what, None
    fwd = run.netrecv.get(NETRECV_FORWARD)
    r = ratio(ms["datagrams_per_s"], bare["datagrams_per_s"])
    rf = ratio(ms["datagrams_per_s"], fwd and fwd["datagrams_per_s"])
    buffers = {x.get("rcvbuf_granted") for x in (bare, ms)}
    measured = (
        f"{fmt_ratio(r)}x ({ms['datagrams_per_s']:.0f} vs {bare['datagrams_per_s']:.0f} "
        f"datagrams/s delivered; {ms.get('senders', '?')} senders, {ms.get('instances', '?')} "
        f"instances, SO_RCVBUF {' / '.join(str(b) for b in sorted(buffers, key=str))}); "
        f"{fmt_ratio(rf)}x the loop forwarding to {ms.get('instances', '?')}"
    )
    return None if r is None else r >= NETRECV_VS_BARE, what, measured


def target_takeover(run):
    what = (
        "takeover after `kill -9` under a 1 kHz stream: 0 datagrams lost per kill; delivery "
        f"gap p99 <= {TAKEOVER_VS_BARE:g}x the bare flock handoff and < {TAKEOVER_P99_MS:g} ms"
    )
    recv = run.takeover.get(TAKEOVER_RECV)
    loss = next((r for r in run.takeover_loss if r.get("handoff") == "mailslot role"), None)
    if recv is None and loss is None:
        return None, what, None
    checks, parts = [], []
    if loss is None:
        checks.append(None)
        parts.append("loss per kill not measured")
    else:
        checks.append(loss["lost"] == 0)
        parts.append(
            f"{loss['lost']} lost in {loss['kills']} kills (max {loss['lost_per_kill_max']} per "
            f"kill, a datagram every {loss.get('interval_us', '?')} us)"
        )
    if recv is None:
        checks.append(None)
        parts.append("delivery gap not measured")
    else:
        bare = run.takeover.get(TAKEOVER_BARE_RECV)
        vs = ratio(recv["p99_ns"], bare and bare["p99_ns"])
        checks += [recv["p99_ns"] / 1e6 < TAKEOVER_P99_MS, within(vs, TAKEOVER_VS_BARE)]
        parts.append(
            f"gap p50 {fmt_ms(recv['p50_ns'])} ms, p99 {fmt_ms(recv['p99_ns'])} ms "
            f"({fmt_ratio(vs)}x the bare handoff's p99, {fmt_ms(bare and bare['p99_ns'])} ms)"
        )
    return all_of(checks), what, "; ".join(parts)


def target_bounded(run):
    what = (
        "fan-out 64 B, k = 1, 2, 4, 8, capacity 64 KiB, `Overflow::Block`: nothing lost; "
        f"<= ZeroMQ and <= 1/{1 / FANOUT_VS_DGRAM:g} raw datagrams at every k, wall and CPU"
    )
    block = bounded_block(run)
    if not any(p == "mailslot" for p, _ in block):
        return None, what, None
    checks, parts, missed = [], [], []
    lost = 0
    for k in BOUNDED_KS:
        m = block.get(("mailslot", k))
        if m is None:
            checks.append(None)
            parts.append(f"k={k}: not measured")
            continue
        lost += m["lost"]
        cells, ok_k = [], [m["lost"] == 0]
        for peer, limit, label in (("zmq", FANOUT_VS_ZMQ, "zmq"), ("unix-dgram", FANOUT_VS_DGRAM, "dgram")):
            p = block.get((peer, k))
            w = ratio(m["wall_ns_per_msg"], p and p["wall_ns_per_msg"])
            c = ratio(m["cpu_ns_per_msg"], p and p["cpu_ns_per_msg"])
            ok_k += [within(w, limit), within(c, limit)]
            cells.append(f"vs {label} {fmt_ratio(w)} / {fmt_ratio(c)}")
        checks += ok_k
        if all_of(ok_k) is False:
            missed.append(k)
        parts.append(f"k={k}: " + ", ".join(cells))
    parts.append(f"{lost} lost (mailslot)")
    measured = "wall / CPU ratio " + "; ".join(parts)
    if missed:
        measured += "; missed at k = " + ", ".join(map(str, missed))
    return all_of(checks), what, measured


def target_latency(run):
    what = f"same-core latency p50 and p99: <= {LATENCY_VS_FUTEX_YIELD}x the futex-yield baseline"
    m50, m99 = run.lat("mailslot", "same-core", "p50_ns"), run.lat("mailslot", "same-core", "p99_ns")
    b50, b99 = run.lat("futex-yield", "same-core", "p50_ns"), run.lat("futex-yield", "same-core", "p99_ns")
    if m50 is None or b50 is None:
        return None, what, None
    r50, r99 = ratio(m50, b50), ratio(m99, b99)
    measured = (
        f"p50 {fmt_ratio(r50)}x, p99 {fmt_ratio(r99)}x ({fmt_us(m50)} / {fmt_us(m99)} us against "
        f"{fmt_us(b50)} / {fmt_us(b99)} us)"
    )
    return all_of([within(r50, LATENCY_VS_FUTEX_YIELD), within(r99, LATENCY_VS_FUTEX_YIELD)]), what, measured


def target_recv_into(run):
    what = f"`recv_into` of 1 MiB: <= {RECV_INTO_VS_MEMCPY}x one `memcpy`"
    mine = next((r for r in run.recv_into if r.get("size") == 1 << 20 and r["operation"].startswith("Server::recv_into")), None)
    copy = next((r for r in run.recv_into if r.get("size") == 1 << 20 and r["operation"].startswith("memcpy")), None)
    if not (mine and copy):
        return None, what, None
    r = ratio(mine["p50_ns"], copy["p50_ns"])
    measured = f"p50 {fmt_ratio(r)}x ({fmt_us(mine['p50_ns'])} us against {fmt_us(copy['p50_ns'])} us)"
    return within(r, RECV_INTO_VS_MEMCPY), what, measured


def target_oneshot(run):
    what = f"one-shot write (`mailslot::write`): <= {ONESHOT_VS_DGRAM:g}x the Unix datagram one-shot"
    mine = next((r for r in run.oneshot if r["peer"] == "mailslot-write"), None)
    base = next((r for r in run.oneshot if r["peer"] == "unix-dgram"), None)
    if not (mine and base):
        return None, what, None
    r = ratio(mine["p50_ns"], base["p50_ns"])
    rc = ratio(mine["cpu_ns"], base["cpu_ns"])
    measured = (
        f"p50 {fmt_ratio(r)}x ({fmt_ns(mine['p50_ns'])} ns against {fmt_ns(base['p50_ns'])} ns); "
        f"writer CPU {fmt_ratio(rc)}x"
    )
    opened = next((r for r in run.oneshot if r["peer"] == "mailslot"), None)
    if opened:
        measured += f"; open + write + drop: p50 {fmt_ratio(ratio(opened['p50_ns'], base['p50_ns']))}x"
    return within(r, ONESHOT_VS_DGRAM), what, measured


def target_idle_instances(run):
    what = f"write cost with 127 idle instances: <= {IDLE_INSTANCES_VS_ONE}x with 1"
    writes = {r["instances"]: r for r in run.footprint if r.get("measure") == "write"}
    one = writes.get(1)
    many = max((k for k in writes if k > 1), default=None)
    if one is None or many is None:
        return None, what, None
    m = writes[many]
    w = ratio(m["wall_ns_per_write"], one["wall_ns_per_write"])
    c = ratio(m["cpu_ns_per_write"], one["cpu_ns_per_write"])
    measured = (
        f"wall / CPU ratio {fmt_ratio(w)} / {fmt_ratio(c)} ({many} instances: "
        f"{m['wall_ns_per_write']:.0f} / {m['cpu_ns_per_write']:.0f} ns per write; 1: "
        f"{one['wall_ns_per_write']:.0f} / {one['cpu_ns_per_write']:.0f} ns)"
    )
    return all_of([within(w, IDLE_INSTANCES_VS_ONE), within(c, IDLE_INSTANCES_VS_ONE)]), what, measured


def fmt_bytes(n):
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10} KiB"
    return f"{n} B"


def target_memory(run):
    what = "memory of an active name: <= capacity + max message + 64 KiB (tmpfs and resident)"
    mems = [r for r in run.footprint if r.get("measure") == "memory"]
    if not mems:
        return None, what, None
    checks, parts = [], []
    for r in sorted(mems, key=lambda r: (r["capacity"], r["max_message"])):
        bound = r["bound_bytes"]
        checks += [r["tmpfs_bytes"] <= bound, r["rss_bytes"] <= bound]
        parts.append(
            f"C={fmt_bytes(r['capacity'])}, M={fmt_bytes(r['max_message'])}: tmpfs "
            f"{fmt_ratio(ratio(r['tmpfs_bytes'], bound))}, resident "
            f"{fmt_ratio(ratio(r['rss_bytes'], bound))}"
        )
    return all_of(checks), what, "of the bound: " + "; ".join(parts)


TARGETS = [
    target_netrecv,
    target_takeover,
    target_bounded,
    target_latency,
    target_recv_into,
    target_oneshot,
    target_idle_instances,
    target_memory,
]


def targets(run):
    """The targets, one row each: (target, measured, verdict)."""
    rows = []
    for check in TARGETS:
        ok, what, measured = check(run)
        if measured is None:
            rows.append((what, NOT_MEASURED, "not measured"))
        else:
            rows.append((what, measured, yes_no(ok)))
    return rows


# ---- markdown -------------------------------------------------------------------------------


def shown_command(command):
    """The bench's arguments without `--out FILE` (a temporary file of the script)."""
    words = command.split()
    out = []
    skip = False
    for w in words:
        if skip:
            skip = False
        elif w == "--out":
            skip = True
        elif not w.startswith("--out="):
            out.append(w)
    return " ".join(out)


def conditions(run, json_path):
    e = run.env
    started = e.get("started_unix")
    when = (
        datetime.datetime.fromtimestamp(started, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        if started
        else "?"
    )
    load = " / ".join(
        "?" if e.get(k) is None else f"{e[k]:.2f}" for k in ("load1", "load5", "load15")
    )
    sizes = ", ".join(f"{s} B" for s in run.sizes) or "-"
    net_size = next((r.get("size") for r in run.netrecv.values() if r.get("size")), None)
    lines = [
        f"- machine: {e.get('cpus', '?')} CPUs (`nproc`), {e.get('cpu_model', '?')}, "
        f"Linux {e.get('kernel', '?')}",
        f"- load average at start (1 / 5 / 15 min): {load} — the machine is shared, other "
        "builds and tests ran beside the bench",
        f"- `net.unix.max_dgram_qlen` = {e.get('max_dgram_qlen', '?')}",
        f"- message sizes: fan-out {sizes}; latency 64 B; network receive "
        f"{net_size if net_size else '?'} B",
        "- placement: fan-out processes unpinned (the scheduler's choice); latency same-core "
        "(both on CPU 0), cross-core (CPU 0 and 1), unpinned (median of several runs)",
        f"- build: {e.get('build', '?')}, features `{e.get('features', '') or 'none'}`, "
        f"mailslot-bench {e.get('version', '?')}, source `{e.get('source') or '?'}`",
        f"- run: {when}, `mailslot-bench {shown_command(e.get('command', '?'))}`; raw numbers: "
        f"`{json_path}`",
    ]
    return "\n".join(lines)


def fanout_md(run, size):
    out = [f"### Fan-out, {size}-byte messages: cost per delivered message\n"]
    peers = [p for p in run.fanout_peers if p != "mailslot"]
    header = ["k", "mailslot wall ns", "mailslot CPU ns"]
    for p in peers:
        header += [f"vs {p} wall", f"vs {p} CPU"]
    header += ["lost"]
    rows = []
    for k in run.ks:
        mw = run.fan("mailslot", size, k, "wall_ns_per_msg")
        mc = run.fan("mailslot", size, k, "cpu_ns_per_msg")
        row = [k, fmt_ns(mw), fmt_ns(mc)]
        for p in peers:
            row += [
                fmt_ratio(ratio(mw, run.fan(p, size, k, "wall_ns_per_msg"))),
                fmt_ratio(ratio(mc, run.fan(p, size, k, "cpu_ns_per_msg"))),
            ]
        row.append(run.fan("mailslot", size, k, "lost"))
        rows.append(row)
    out.append(table(header, rows))
    out.append(
        "\nRatios are mailslot / peer (below 1: mailslot cheaper). Absolute numbers, ns per "
        "delivered message, wall / CPU (user+sys of all processes), and voluntary context "
        "switches per delivered message:\n"
    )
    header = ["k"] + run.fanout_peers
    rows = []
    for k in run.ks:
        row = [k]
        for p in run.fanout_peers:
            w = run.fan(p, size, k, "wall_ns_per_msg")
            c = run.fan(p, size, k, "cpu_ns_per_msg")
            v = run.fan(p, size, k, "vcsw_per_msg")
            row.append(
                "-" if w is None else f"{fmt_ns(w)} / {fmt_ns(c)} ({v:.3f} csw)"
            )
        rows.append(row)
    out.append(table(header, rows))
    return "\n".join(out)


def latency_md(run):
    out = ["### Latency: one-way, blocking, 64-byte messages\n"]
    others = [p for p in run.latency_peers if p != "mailslot"]
    header = ["placement", "mailslot p50 us", "mailslot p99 us"]
    for p in others:
        header += [f"vs {p} p50", f"vs {p} p99"]
    rows = []
    for pl in run.placements:
        m50 = run.lat("mailslot", pl, "p50_ns")
        m99 = run.lat("mailslot", pl, "p99_ns")
        row = [pl, fmt_us(m50), fmt_us(m99)]
        for p in others:
            row += [
                fmt_ratio(ratio(m50, run.lat(p, pl, "p50_ns"))),
                fmt_ratio(ratio(m99, run.lat(p, pl, "p99_ns"))),
            ]
        rows.append(row)
    out.append(table(header, rows, ["---"] + ["---:"] * (len(header) - 1)))
    out.append("\nAbsolute numbers, one-way p50 / p99 in us (unpinned: median run, p50 range over runs):\n")
    header = ["placement"] + run.latency_peers
    rows = []
    for pl in run.placements:
        row = [pl]
        for p in run.latency_peers:
            r = run.latency.get((p, pl))
            if r is None:
                row.append("-")
                continue
            cell = f"{fmt_us(r['p50_ns'])} / {fmt_us(r['p99_ns'])}"
            if r.get("runs", 1) > 1:
                cell += f" ({fmt_us(r['p50_min_over_runs_ns'])}..{fmt_us(r['p50_max_over_runs_ns'])})"
            row.append(cell)
        rows.append(row)
    out.append(table(header, rows, ["---"] + ["---:"] * (len(header) - 1)))
    return "\n".join(out)


def takeover_md(run):
    out = ["### Network role takeover after kill -9 of the holder\n"]
    rows = []
    for until, base in (
        (TAKEOVER_BARE, TAKEOVER_BARE),
        (TAKEOVER_BARE_RECV, TAKEOVER_BARE_RECV),
        (TAKEOVER_HOLD, TAKEOVER_BARE),
        (TAKEOVER_RECV, TAKEOVER_BARE_RECV),
    ):
        r = run.takeover.get(until)
        if r is None:
            continue
        b = run.takeover.get(base)
        rows.append(
            [
                until,
                fmt_ms(r["p50_ns"]),
                fmt_ms(r["p99_ns"]),
                fmt_ms(r["max_ns"]),
                fmt_ratio(ratio(r["p50_ns"], b and b["p50_ns"])),
                fmt_ratio(ratio(r["p99_ns"], b and b["p99_ns"])),
                r["kills"],
            ]
        )
    out.append(
        table(
            ["until", "p50 ms", "p99 ms", "max ms", "p50 vs bare", "p99 vs bare", "kills"],
            rows,
            ["---"] + ["---:"] * 6,
        )
    )
    if run.takeover_loss:
        interval = run.takeover_loss[0].get("interval_us")
        out.append(
            f"\nDatagrams lost per kill, a stream of distinct datagrams every {interval} us "
            "(bare = processes passing a flock and the port bind, without mailslot):\n"
        )
        rows = [
            [
                r["handoff"],
                r["sent"],
                r["delivered"],
                r["lost"],
                f"{r['lost_per_kill_mean']:.2f}",
                r["lost_per_kill_p50"],
                r["lost_per_kill_p99"],
                r["lost_per_kill_max"],
            ]
            for r in run.takeover_loss
        ]
        out.append(
            table(
                ["handoff", "sent", "delivered", "lost", "lost/kill mean", "p50", "p99", "max"],
                rows,
                ["---"] + ["---:"] * 7,
            )
        )
    return "\n".join(out)


def netrecv_md(run):
    out = ["### Network receive into a shared name\n"]
    bare = run.netrecv.get(NETRECV_BARE)
    fwd = run.netrecv.get(NETRECV_FORWARD)
    rows = []
    for what in (NETRECV_BARE, NETRECV_FORWARD, NETRECV_MAILSLOT, NETRECV_STANDBY):
        r = run.netrecv.get(what)
        if r is None:
            continue
        rows.append(
            [
                r.get("label", what),
                r.get("rcvbuf_granted", "?"),
                r["sent"],
                r.get("received", "?"),
                r["delivered"],
                r.get("dropped", "?"),
                f"{r.get('received_per_s', 0):.0f}",
                f"{r['datagrams_per_s']:.0f}",
                fmt_ratio(ratio(r["datagrams_per_s"], bare and bare["datagrams_per_s"])),
                fmt_ratio(ratio(r["datagrams_per_s"], fwd and fwd["datagrams_per_s"])),
            ]
        )
    out.append(
        table(
            [
                "receiver",
                "SO_RCVBUF granted",
                "sent",
                "received",
                "delivered",
                "dropped",
                "received/s",
                "delivered/s",
                "vs bare",
                "vs forward",
            ],
            rows,
            ["---"] + ["---:"] * 9,
        )
    )
    m = run.netrecv.get(NETRECV_MAILSLOT, {})
    if m:
        out.append(
            f"\n{m.get('senders', '?')} sender processes; every receiver asked for SO_RCVBUF = "
            f"{m.get('rcvbuf_requested', '?')} bytes (granted: the kernel's doubled value). "
            f"delivered = reached all {m.get('instances')} consumers; dropped = sent - received "
            "(the kernel's drops). forward = a bare loop sending each datagram on to the same "
            "number of processes over Unix datagram sockets. A candidate standing by holds the "
            "role's socket: the holder then reads each batch without taking it, and takes it "
            "off once delivered, so that its successor loses nothing (one more system call "
            "per batch)."
        )
    return "\n".join(out)


def bounded_md(run):
    out = ["### Fan-out with a bound (`--capacity`, `--overflow`)\n"]
    rows = []
    for r in sorted(run.fanout_bounded, key=lambda r: (r["overflow"], r["size"], r["readers"], r["peer"])):
        rows.append(
            [
                r["overflow"],
                r["size"],
                r["readers"],
                r["peer"],
                r.get("bound_messages", "?"),
                fmt_ns(r["wall_ns_per_msg"]),
                fmt_ns(r["cpu_ns_per_msg"]),
                r["sent"],
                r["delivered"],
                f"{r['lost']} ({r.get('lost_silent', 0)} silent)",
                r.get("writer_retries", 0),
            ]
        )
    out.append(
        table(
            ["overflow", "size", "k", "peer", "bound (msgs)", "wall ns", "CPU ns", "sent",
             "delivered", "lost", "writer retries"],
            rows,
            ["---"] * 4 + ["---:"] * 7,
        )
    )
    out.append(
        "\nEvery peer gets the same bound in messages (mailslot: its ring; zmq: SNDHWM + RCVHWM; "
        "iceoryx2: the subscriber buffer) and the equivalent policy (see bench/README.md); "
        "unix-dgram always blocks at its socket queue. silent = losses the transport did not "
        "report (gaps in the sequence)."
    )
    return "\n".join(out)


def oneshot_md(run):
    out = ["### One-shot: open a writer, write one 64-byte message, close\n"]
    base = next((r for r in run.oneshot if r["peer"] == "unix-dgram"), None)
    rows = []
    for r in run.oneshot:
        sc = r.get("syscalls")
        rows.append(
            [
                r["peer"],
                fmt_ns(r["p50_ns"]),
                fmt_ns(r["p99_ns"]),
                fmt_ns(r["cpu_ns"]),
                "?" if sc is None else f"{sc:.1f}",
                fmt_ratio(ratio(r["p50_ns"], base and base["p50_ns"])),
                fmt_ratio(ratio(r["cpu_ns"], base and base["cpu_ns"])),
            ]
        )
    out.append(
        table(
            ["peer", "p50 ns", "p99 ns", "writer CPU ns", "syscalls/op", "p50 vs dgram", "CPU vs dgram"],
            rows,
            ["---"] + ["---:"] * 6,
        )
    )
    out.append("\nunix-dgram = socket + sendto + close; mailslot = Writer::open_in + write + drop.")
    return "\n".join(out)


def large_md(run):
    out = ["### Large messages: fan-out against a memcpy floor\n"]
    rows = []
    for r in sorted(run.large, key=lambda r: (r["size"], r["readers"], r["peer"])):
        floor = r["memcpy_ns_per_msg"]
        rows.append(
            [
                r["size"],
                r["readers"],
                r["peer"],
                fmt_ns(r["wall_ns_per_msg"]),
                fmt_ns(r["cpu_ns_per_msg"]),
                fmt_ns(floor),
                fmt_ratio(ratio(r["wall_ns_per_msg"], floor)),
                fmt_ratio(ratio(r["cpu_ns_per_msg"], floor)),
                r["lost"],
            ]
        )
    out.append(
        table(
            ["size", "k", "peer", "wall ns/msg", "CPU ns/msg", "memcpy ns", "wall vs memcpy",
             "CPU vs memcpy", "lost"],
            rows,
            ["---:"] * 2 + ["---"] + ["---:"] * 6,
        )
    )
    if run.recv_into:
        copy = next((r for r in run.recv_into if r["operation"].startswith("memcpy")), None)
        out.append("\nOne `recv_into` of 1 MiB against one memcpy of 1 MiB (both of data just written):\n")
        rows = [
            [
                r["operation"],
                fmt_ns(r["p50_ns"]),
                fmt_ns(r["p99_ns"]),
                fmt_ratio(ratio(r["p50_ns"], copy and copy["p50_ns"])),
            ]
            for r in run.recv_into
        ]
        out.append(table(["operation", "p50 ns", "p99 ns", "p50 vs memcpy"], rows, ["---"] + ["---:"] * 3))
    return "\n".join(out)


def footprint_md(run):
    out = []
    writes = sorted((r for r in run.footprint if r.get("measure") == "write"), key=lambda r: r["instances"])
    if writes:
        one = next((r for r in writes if r["instances"] == 1), None)
        out.append("### Footprint: write cost with idle instances\n")
        rows = [
            [
                r["instances"],
                f"{r['wall_ns_per_write']:.1f}",
                f"{r['cpu_ns_per_write']:.1f}",
                fmt_ratio(ratio(r["wall_ns_per_write"], one and one["wall_ns_per_write"])),
                fmt_ratio(ratio(r["cpu_ns_per_write"], one and one["cpu_ns_per_write"])),
            ]
            for r in writes
        ]
        out.append(
            table(["instances (all idle)", "wall ns/write", "CPU ns/write", "wall vs 1", "CPU vs 1"], rows)
        )
        w = writes[0]
        out.append(
            f"\n{w['messages']} writes of {w['size']} bytes by one writer process, median of "
            f"{w['rounds']} rounds; a shared name with the default capacity, drop-oldest. Every "
            "instance is held by one helper process and is idle (opened, never read), so no "
            "write wakes anyone.\n"
        )
    mems = sorted((r for r in run.footprint if r.get("measure") == "memory"), key=lambda r: (r["capacity"], r["max_message"]))
    if mems:
        out.append("### Footprint: memory of an active name\n")
        rows = [
            [
                fmt_bytes(r["capacity"]),
                fmt_bytes(r["max_message"]),
                r["bound_bytes"],
                r["file_bytes"],
                r["tmpfs_bytes"],
                r["rss_bytes"],
                fmt_ratio(ratio(r["tmpfs_bytes"], r["bound_bytes"])),
                fmt_ratio(ratio(r["rss_bytes"], r["bound_bytes"])),
                f"{r['read']} / {r['written']} ({r['lost']} lost)",
            ]
            for r in mems
        ]
        out.append(
            table(
                ["capacity", "max message", "bound bytes", "file bytes", "tmpfs bytes", "resident bytes",
                 "tmpfs vs bound", "resident vs bound", "read / written"],
                rows,
            )
        )
        out.append(
            "\nbound = capacity + max message + 64 KiB; tmpfs = st_blocks x 512 of the name's file; "
            "resident = Rss of the reader's mappings of it (/proc/self/smaps) after twice the file "
            "has passed through the ring, written in batches the reader drained."
        )
    return "\n".join(out)


def markdown(run, json_path, png_link):
    parts = [
        "# mailslot performance (generated)\n",
        f"Generated by `bench/plot.py` from `{json_path}`; do not edit, re-run "
        "`bash scripts/bench-report.sh`. Ratios are mailslot / peer: below 1 means mailslot "
        "is cheaper or faster. One run on a shared 2-core machine: single numbers move "
        "between runs (see the conditions).\n",
    ]
    if png_link:
        parts.append(f"![fan-out cost and latency, mailslot against its peers]({png_link})\n")
    parts.append("## Targets\n")
    parts.append(
        table(["target", "measured", "verdict"], targets(run), ["---", "---", "---"])
    )
    parts.append(
        "\nRatios are mailslot / baseline within this run. Fan-out and write-cost ratios are "
        "given as wall / CPU; such a target counts as met only when both are within it. The "
        "bounded fan-out is the `--overflow block` run of `scripts/bench-report.sh`; the takeover "
        "gap is compared with the bare flock + bind handoff until the next waiter receives; "
        "latency and `recv_into` compare p50 (and p99 for latency); the one-shot compares the "
        "p50 of `mailslot::write` with socket + sendto + close.\n"
    )
    parts.append("## Conditions\n")
    parts.append(conditions(run, json_path) + "\n")
    parts.append("## Tables\n")
    for size in run.sizes:
        parts.append(fanout_md(run, size) + "\n")
    if run.latency:
        parts.append(latency_md(run) + "\n")
    if run.takeover:
        parts.append(takeover_md(run) + "\n")
    if run.netrecv:
        parts.append(netrecv_md(run) + "\n")
    if run.fanout_bounded:
        parts.append(bounded_md(run) + "\n")
    if run.oneshot:
        parts.append(oneshot_md(run) + "\n")
    if run.large:
        parts.append(large_md(run) + "\n")
    if run.footprint:
        parts.append(footprint_md(run) + "\n")
    return "\n".join(parts)


# ---- the summary block spliced into the README section ------------------------------------

BEGIN = "<!-- bench-report:begin"
END = "<!-- bench-report:end -->"


def pair(a, b):
    return f"{fmt_ratio(a)} / {fmt_ratio(b)}"


def summary(run, json_path, png_link):
    """Headline tables, verdicts and conditions: the generated part of the README section."""
    e = run.env
    out = []
    if png_link:
        out.append(f"![mailslot against its peers: fan-out cost and latency]({png_link})\n")
    size = 64
    peers = [p for p in run.fanout_peers if p != "mailslot"]
    if size in run.sizes:
        out.append(
            f"Fan-out, {size}-byte messages, 1 writer to k blocking readers, nothing lost: "
            "mailslot / peer, cost per delivered message, wall / CPU:\n"
        )
        rows = []
        for k in run.ks:
            mw = run.fan("mailslot", size, k, "wall_ns_per_msg")
            mc = run.fan("mailslot", size, k, "cpu_ns_per_msg")
            row = [k, f"{fmt_ns(mw)} / {fmt_ns(mc)}"]
            for p in peers:
                row.append(
                    pair(
                        ratio(mw, run.fan(p, size, k, "wall_ns_per_msg")),
                        ratio(mc, run.fan(p, size, k, "cpu_ns_per_msg")),
                    )
                )
            rows.append(row)
        out.append(table(["k", "mailslot ns"] + [f"vs {p}" for p in peers], rows))
        out.append("")
    if run.placements:
        others = [
            p for p in ("futex", "futex-yield", "eventfd", "iceoryx2", "zmq", "unix-dgram") if p in run.latency_peers
        ]
        out.append("One-way blocking latency, 64 bytes: mailslot / peer, p50 / p99:\n")
        rows = []
        for pl in run.placements:
            m50, m99 = run.lat("mailslot", pl, "p50_ns"), run.lat("mailslot", pl, "p99_ns")
            row = [pl, f"{fmt_us(m50)} / {fmt_us(m99)} us"]
            for p in others:
                row.append(pair(ratio(m50, run.lat(p, pl, "p50_ns")), ratio(m99, run.lat(p, pl, "p99_ns"))))
            rows.append(row)
        out.append(
            table(["placement", "mailslot"] + [f"vs {p}" for p in others], rows, ["---"] + ["---:"] * (len(others) + 1))
        )
        out.append("")
    out.append("Targets in this run:\n")
    out.append(table(["target", "measured", "verdict"], targets(run), ["---", "---", "---"]))
    out.append("")
    load = e.get("load1")
    sizes = ", ".join(str(s) for s in run.sizes)
    out.append(
        f"Conditions: {e.get('cpus', '?')} CPUs ({e.get('cpu_model', '?')}), Linux {e.get('kernel', '?')}, "
        f"load average {'?' if load is None else f'{load:.2f}'} at start (shared machine), "
        f"`net.unix.max_dgram_qlen` = {e.get('max_dgram_qlen', '?')}, fan-out {sizes} B unpinned, "
        f"latency 64 B pinned same-core / cross-core and unpinned, {e.get('build', '?')} build of "
        f"`{e.get('source') or '?'}`. All tables, the 1024-byte fan-out and the absolute numbers: "
        f"[docs/perf.md](docs/perf.md); raw numbers: `{json_path}`."
    )
    return "\n".join(out)


def splice(path, block):
    """Replaces the text between the bench-report markers in `path`; False if it has none."""
    with open(path) as f:
        text = f.read()
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < start:
        return False
    head = text[: text.index("\n", start) + 1]  # keeps the begin marker line as it is
    new = head + "\n" + block.rstrip() + "\n\n" + text[end:]
    if new != text:
        with open(path, "w") as f:
            f.write(new)
    return True


# ---- plot -----------------------------------------------------------------------------------


def plot(run, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = 64 if 64 in run.sizes else (run.sizes[0] if run.sizes else None)
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def log_ticks(ax):
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())

    fig = plt.figure(figsize=(12, 9.5))
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.05])
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])]
    for ax, field, what in (
        (axes[0], "wall_ns_per_msg", "wall time"),
        (axes[1], "cpu_ns_per_msg", "CPU time (user+sys, all processes)"),
    ):
        if size is None:
            ax.set_visible(False)
            continue
        for p in run.fanout_peers:
            ks = [k for k in run.ks if run.fan(p, size, k, field)]
            ys = [run.fan(p, size, k, field) for k in ks]
            ax.plot(
                ks,
                ys,
                marker=MARKERS.get(p, "o"),
                color=COLORS.get(p),
                linewidth=2.5 if p == "mailslot" else 1.5,
                label=p,
            )
        dg = [(k, run.fan("unix-dgram", size, k, field)) for k in run.ks]
        dg = [(k, v * FANOUT_VS_DGRAM) for k, v in dg if v]
        if dg:
            ax.plot(
                [k for k, _ in dg],
                [v for _, v in dg],
                linestyle=":",
                color=COLORS["unix-dgram"],
                label="target: 1/2 of unix-dgram",
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(run.ks)
        ax.set_xticklabels([str(k) for k in run.ks])
        ax.set_yscale("log")
        log_ticks(ax)
        ax.set_xlabel("k blocking readers")
        ax.set_ylabel("ns per delivered message (log)")
        ax.set_title(f"Fan-out, {size} B: {what}")
        ax.grid(True, which="both", alpha=0.3)
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi * 8)  # room for the legend above the lines
        ax.legend(fontsize=8, loc="upper center", ncol=3, framealpha=0.9)

    ax = axes[2]
    peers = [p for p in PLOT_LATENCY_PEERS if p in run.latency_peers]
    if run.placements and peers:
        width = 0.8 / len(peers)
        for i, p in enumerate(peers):
            xs, p50, p99 = [], [], []
            for j, pl in enumerate(run.placements):
                a, b = run.lat(p, pl, "p50_ns"), run.lat(p, pl, "p99_ns")
                if a is None:
                    continue
                xs.append(j - 0.4 + width * (i + 0.5))
                p50.append(a / 1000)
                p99.append(b / 1000)
            ax.bar(xs, p99, width * 0.9, color=COLORS.get(p), alpha=0.35, edgecolor=COLORS.get(p))
            ax.bar(xs, p50, width * 0.9, color=COLORS.get(p), label=p)
        ax.set_xticks(range(len(run.placements)))
        ax.set_xticklabels(run.placements)
        ax.set_yscale("log")
        log_ticks(ax)
        ax.set_ylabel("one-way latency, us (log)")
        ax.set_title("Latency, one-way, 64 B: p50 (solid) and p99 (light), per placement")
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8, ncol=len(peers), loc="upper left")
        lo, hi = ax.get_ylim()
        ax.set_ylim(min(lo, 1.0), hi * 3)  # bars start at 1 us; room for the legend
    else:
        ax.set_visible(False)

    e = run.env
    load = e.get("load1")
    fig.suptitle(
        f"mailslot vs peers, lower is better. {e.get('cpus', '?')} CPUs ({e.get('cpu_model', '?')}), "
        f"Linux {e.get('kernel', '?')}, load {'?' if load is None else f'{load:.1f}'} at start,\n"
        f"net.unix.max_dgram_qlen = {e.get('max_dgram_qlen', '?')}, fan-out processes unpinned, "
        f"one run ({e.get('source') or '?'})",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--png")
    ap.add_argument("--md")
    ap.add_argument("--json-path", help="how the markdown names the JSON file")
    ap.add_argument("--png-link", help="image link in the markdown (relative to it)")
    ap.add_argument(
        "--splice",
        nargs="*",
        default=[],
        metavar="FILE",
        help="replace the block between <!-- bench-report:begin ...--> and <!-- bench-report:end --> "
        "in each FILE (image link docs/perf.png, for a file at the repository root)",
    )
    ap.add_argument("--splice-png-link", default="docs/perf.png")
    a = ap.parse_args()
    with open(a.results) as f:
        run = Run(json.load(f))
    if not run.fanout and not run.latency:
        sys.exit(f"{a.results}: no fanout or latency records")
    if a.png:
        plot(run, a.png)
    if a.md:
        text = markdown(run, a.json_path or a.results, a.png_link)
        with open(a.md, "w") as f:
            f.write(text.rstrip() + "\n")
    for path in a.splice:
        try:
            done = splice(path, summary(run, a.json_path or a.results, a.splice_png_link))
        except FileNotFoundError:
            done = False
        print(f"{path}: {'summary block updated' if done else 'no bench-report markers, left alone'}")
    for row in targets(run):
        print(f"{row[2]:>14}  {row[0]}: {row[1]}".replace("**", ""))


if __name__ == "__main__":
    main()
