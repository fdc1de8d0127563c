#!/usr/bin/env python3
"""Render the raw numbers of one `mailslot-bench all --out FILE.json` run.

    plot.py RESULTS.json --png docs/perf.png --md docs/perf.md [--json-path P] [--png-link L]

--png: the plot (fan-out cost per delivered 64-byte message vs k, wall and CPU, log y; latency
p50/p99 per placement, log y). Needs matplotlib.
--md: the tables of ratios against every peer and baseline, the DESIGN.md section 5 targets
with a met / not met verdict each, and the conditions of the run. Everything in it comes from
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

# DESIGN.md section 5.
FANOUT_VS_DGRAM = 0.5
FANOUT_VS_ZMQ = 1.0
LATENCY_VS_BASELINE = 1.2
LATENCY_VS_ICEORYX2 = 1.0
TAKEOVER_P99_MS = 5.0
NETRECV_VS_BARE = 0.8


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
        return "not measured"
    return "**met**" if ok else "**not met**"


def table(header, rows, align=None):
    align = align or ["---:"] * len(header)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


# ---- the verdicts ---------------------------------------------------------------------------


def fanout_verdicts(run, size=64):
    """Per k: (ratio vs dgram wall, cpu), (ratio vs zmq wall, cpu), lost."""
    out = []
    for k in run.ks:
        m = [run.fan("mailslot", size, k, f) for f in ("wall_ns_per_msg", "cpu_ns_per_msg")]
        d = [run.fan("unix-dgram", size, k, f) for f in ("wall_ns_per_msg", "cpu_ns_per_msg")]
        z = [run.fan("zmq", size, k, f) for f in ("wall_ns_per_msg", "cpu_ns_per_msg")]
        out.append(
            {
                "k": k,
                "dgram": (ratio(m[0], d[0]), ratio(m[1], d[1])),
                "zmq": (ratio(m[0], z[0]), ratio(m[1], z[1])),
                "lost": run.fan("mailslot", size, k, "lost"),
            }
        )
    return out


def both_within(pair, limit):
    """Met if wall and CPU are both within the limit; None if not measured."""
    if pair[0] is None or pair[1] is None:
        return None
    return pair[0] <= limit and pair[1] <= limit


def latency_checks(run, placement):
    """(p50 vs best baseline, p99 vs best baseline, p50 vs iceoryx2, p99 vs iceoryx2)."""
    res = {}
    for q in ("p50_ns", "p99_ns"):
        m = run.lat("mailslot", placement, q)
        bases = [run.lat(b, placement, q) for b in ("futex", "eventfd")]
        bases = [b for b in bases if b]
        res[q + "_base"] = ratio(m, min(bases)) if bases else None
        res[q + "_ice"] = ratio(m, run.lat("iceoryx2", placement, q))
    return res


def targets(run):
    """Rows of (target, measured, verdict) for DESIGN.md section 5."""
    rows = []
    fv = fanout_verdicts(run)
    if fv:
        parts, oks = [], []
        for v in fv:
            ok = both_within(v["dgram"], FANOUT_VS_DGRAM)
            oks.append(ok)
            parts.append(f"k={v['k']}: {fmt_ratio(v['dgram'][0])} / {fmt_ratio(v['dgram'][1])}")
        met = [v["k"] for v, ok in zip(fv, oks) if ok]
        verdict = yes_no(all(oks)) if None not in oks else "not measured"
        if not all(oks) and met:
            verdict += " (met at k = " + ", ".join(map(str, met)) + ")"
        rows.append(
            (
                "fan-out, 64 B, nothing lost: mailslot <= 1/2 of raw Unix datagram fan-out at every k",
                "wall / CPU ratio " + "; ".join(parts),
                verdict,
            )
        )
        if "zmq" in run.fanout_peers:
            parts, oks = [], []
            for v in fv:
                oks.append(both_within(v["zmq"], FANOUT_VS_ZMQ))
                parts.append(f"k={v['k']}: {fmt_ratio(v['zmq'][0])} / {fmt_ratio(v['zmq'][1])}")
            met = [v["k"] for v, ok in zip(fv, oks) if ok]
            verdict = yes_no(all(oks)) if None not in oks else "not measured"
            if not all(oks) and met:
                verdict += " (met at k = " + ", ".join(map(str, met)) + ")"
            rows.append(
                (
                    "fan-out, 64 B: mailslot <= ZeroMQ PUB/SUB (no-drop)",
                    "wall / CPU ratio " + "; ".join(parts),
                    verdict,
                )
            )
        lost = sum(v["lost"] or 0 for v in fv)
        rows.append(("fan-out: nothing lost", f"{lost} lost (mailslot, 64 B, all k)", yes_no(lost == 0)))
    for placement in ("same-core", "unpinned"):
        if placement not in run.placements:
            continue
        c = latency_checks(run, placement)
        ok_base = None
        if c["p50_ns_base"] is not None and c["p99_ns_base"] is not None:
            ok_base = c["p50_ns_base"] <= LATENCY_VS_BASELINE and c["p99_ns_base"] <= LATENCY_VS_BASELINE
        rows.append(
            (
                f"latency, {placement}: p50 and p99 within 1.2x of the faster of futex / eventfd",
                f"p50 {fmt_ratio(c['p50_ns_base'])}x, p99 {fmt_ratio(c['p99_ns_base'])}x "
                f"({fmt_us(run.lat('mailslot', placement, 'p50_ns'))} / "
                f"{fmt_us(run.lat('mailslot', placement, 'p99_ns'))} us)",
                yes_no(ok_base),
            )
        )
        ok_ice = None
        if c["p50_ns_ice"] is not None and c["p99_ns_ice"] is not None:
            ok_ice = c["p50_ns_ice"] <= LATENCY_VS_ICEORYX2 and c["p99_ns_ice"] <= LATENCY_VS_ICEORYX2
        rows.append(
            (
                f"latency, {placement}: p50 and p99 at most iceoryx2's event path",
                f"p50 {fmt_ratio(c['p50_ns_ice'])}x, p99 {fmt_ratio(c['p99_ns_ice'])}x",
                yes_no(ok_ice),
            )
        )
    recv = run.takeover.get(TAKEOVER_RECV)
    if recv:
        bare = run.takeover.get(TAKEOVER_BARE_RECV)
        vs = ratio(recv["p99_ns"], bare and bare["p99_ns"])
        ok = recv["p99_ns"] / 1e6 < TAKEOVER_P99_MS and (vs is None or vs <= 2.0)
        rows.append(
            (
                "network role takeover after kill -9: delivery gap p99 <= 2x the bare flock + "
                "bind handoff and < 5 ms",
                f"p50 {fmt_ms(recv['p50_ns'])} ms, p99 {fmt_ms(recv['p99_ns'])} ms "
                f"({fmt_ratio(vs)}x the bare handoff's p99)",
                yes_no(ok),
            )
        )
    bare, ms = run.netrecv.get(NETRECV_BARE), run.netrecv.get(NETRECV_MAILSLOT)
    if bare and ms:
        fwd = run.netrecv.get(NETRECV_FORWARD)
        r = ratio(ms["datagrams_per_s"], bare["datagrams_per_s"])
        rf = ratio(ms["datagrams_per_s"], fwd and fwd["datagrams_per_s"])
        rows.append(
            (
                f"network receive into {ms['instances']} instances ({ms.get('senders', 1)} senders, "
                "same SO_RCVBUF): >= 0.8x a bare UDP loop",
                f"{fmt_ratio(r)}x ({ms['datagrams_per_s']:.0f} vs {bare['datagrams_per_s']:.0f} "
                f"datagrams/s delivered); {fmt_ratio(rf)}x a bare loop forwarding to "
                f"{ms['instances']}",
                yes_no(r is not None and r >= NETRECV_VS_BARE),
            )
        )
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
    for what in (NETRECV_BARE, NETRECV_FORWARD, NETRECV_MAILSLOT):
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
            "number of processes over Unix datagram sockets."
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
    parts.append("## Targets (DESIGN.md section 5)\n")
    parts.append(
        table(["target", "measured", "verdict"], targets(run), ["---", "---", "---"])
    )
    parts.append(
        "\nFan-out ratios are given as wall / CPU; a target counts as met at a k when both are "
        "within it. Latency is compared with the faster of the two bare baselines.\n"
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
    out.append("DESIGN.md §5 targets in this run:\n")
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
