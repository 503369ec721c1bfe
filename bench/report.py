#!/usr/bin/env python3
"""bench/report.py - turns bench/run's raw runs into the comparison.

Reads WORK/runs.jsonl (one line per run: scenario, proxy, repetition, the
machine's idleness before it, and sluice-bench's JSON) and the openssl speed
outputs; prints a table of medians (min-max) and of ratios sluice/peer;
writes RESULTS/latest.json and, through gnuplot and bench/plot.gp,
RESULTS/latest.svg.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

# (scenario, metric, label, unit, higher_is_better, how to read it from a run)
METRICS = [
    ("small", "requests_per_s", "small: requests/s", "req/s", True,
     lambda r: r["bench"]["requests_per_s"]),
    ("small", "p99_us", "small: p99", "us", False,
     lambda r: r["bench"]["latency_us"]["p99"]),
    ("small", "cpu_us_per_request", "small: proxy CPU per request", "us", False,
     lambda r: r["bench"].get("server_cpu_us_per_request")),
    ("bulk", "mb_per_s", "bulk: MB/s", "MB/s", True,
     lambda r: r["bench"]["mb_per_s"]),
    ("bulk", "cpu_us_per_mb", "bulk: proxy CPU per MB", "us", False,
     lambda r: r["bench"].get("server_cpu_us_per_mb")),
    ("hs_ecdsa", "handshakes_per_s", "handshakes ECDSA P-256/s", "hs/s", True,
     lambda r: r["bench"]["handshakes_per_s"]),
    ("hs_ecdsa", "cpu_us_per_handshake", "ECDSA: proxy CPU per handshake", "us", False,
     lambda r: r["bench"].get("server_cpu_us_per_handshake")),
    ("hs_ecdsa", "handshakes_per_core_s", "ECDSA: handshakes per proxy core-s", "hs",
     True, lambda r: per_core_second(r["bench"].get("server_cpu_us_per_handshake"))),
    ("hs_rsa", "handshakes_per_s", "handshakes RSA-2048/s", "hs/s", True,
     lambda r: r["bench"]["handshakes_per_s"]),
    ("hs_rsa", "cpu_us_per_handshake", "RSA: proxy CPU per handshake", "us", False,
     lambda r: r["bench"].get("server_cpu_us_per_handshake")),
    ("hs_rsa", "handshakes_per_core_s", "RSA: handshakes per proxy core-s", "hs",
     True, lambda r: per_core_second(r["bench"].get("server_cpu_us_per_handshake"))),
    ("latency", "p50_us", "latency: p50", "us", False,
     lambda r: r["bench"]["latency_us"]["p50"]),
    ("latency", "p99_us", "latency: p99", "us", False,
     lambda r: r["bench"]["latency_us"]["p99"]),
    ("latency", "cpu_us_per_request", "latency: proxy CPU per request", "us", False,
     lambda r: r["bench"].get("server_cpu_us_per_request")),
    ("memory", "kib_per_conn", "memory: KiB per idle connection", "KiB", False,
     lambda r: kib_per_conn(r)),
]

# The chart: one panel per (scenario, metric), the headline figures.
PANELS = [
    ("small", "requests_per_s"), ("small", "cpu_us_per_request"), ("bulk", "mb_per_s"),
    ("hs_ecdsa", "handshakes_per_s"), ("hs_rsa", "handshakes_per_s"),
    ("latency", "p50_us"), ("latency", "p99_us"), ("memory", "kib_per_conn"),
]

# A load generator above this share of its core may be what limits a run.
BENCH_BOUND = 0.90


def per_core_second(us):
    """What one core would do at this CPU cost per unit: the proxy's
    efficiency even when the load side, not the proxy, set the pace."""
    return 1e6 / us if us else None


def kib_per_conn(r):
    b = r.get("bench") or {}
    n = b.get("idle_ready") or 0
    if n <= 0 or "rss_idle_kib" not in r:
        return None
    return (r["rss_idle_kib"] - r["rss_before_kib"]) / n


def load_runs(path):
    runs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    return runs


def summarize(runs):
    """summary[scenario][proxy][metric] = {median, min, max, n} and the
    problems seen (errors, busy machine, a saturated load generator)."""
    summary, notes = {}, []
    for scen, metric, _label, _unit, _hib, get in METRICS:
        by_proxy = {}
        for r in runs:
            if r["scenario"] != scen or not r.get("bench"):
                continue
            try:
                v = get(r)
            except (KeyError, TypeError):
                v = None
            if v is not None:
                by_proxy.setdefault(r["proxy"], []).append(v)
        for proxy, vals in by_proxy.items():
            summary.setdefault(scen, {}).setdefault(proxy, {})[metric] = {
                "median": statistics.median(vals), "min": min(vals), "max": max(vals),
                "n": len(vals)}
    busy = []
    for r in runs:
        b = r.get("bench")
        tag = f"{r['scenario']}/{r['proxy']}/rep {r['rep']}"
        if not r.get("machine_idle", True):
            busy.append(r.get("idle_pct") or 0.0)
        if not b:
            notes.append(f"{tag}: no result (exit {r['exit']})")
            continue
        if b["errors"] or b["mismatches"]:
            notes.append(f"{tag}: {b['errors']} errors, {b['mismatches']} wrong answers")
        if r["scenario"] != "memory" and b.get("cpu_core_share", 0) > BENCH_BOUND:
            notes.append(f"{tag}: sluice-bench used {100 * b['cpu_core_share']:.0f}% of its "
                         "core: the figure may be the load generator's limit")
    if busy:
        notes.insert(0, f"{len(busy)} of {len(runs)} runs started on a busy machine (as little "
                        f"as {min(busy):.0f}% idle): their figures are not comparable; see "
                        "each run's idle_pct")
    return summary, notes


def ratios(summary):
    out = {}
    for scen, metric, _label, _unit, hib, _get in METRICS:
        s = summary.get(scen, {})
        if "sluice" not in s or metric not in s["sluice"]:
            continue
        mine = s["sluice"][metric]["median"]
        for peer, m in s.items():
            if peer in ("sluice", "direct") or metric not in m or not m[metric]["median"]:
                continue
            out.setdefault(scen, {}).setdefault(metric, {})[peer] = mine / m[metric]["median"]
    return out


def parse_speed(work):
    """openssl speed outputs -> the primitives' rates on the proxy's core."""
    out = {}

    def read(name):
        p = os.path.join(work, name)
        return open(p).read() if os.path.exists(p) else ""

    for name, key in (("speed-aes128gcm.txt", "aes_128_gcm_mb_per_s"),
                      ("speed-aes256gcm.txt", "aes_256_gcm_mb_per_s")):
        for line in read(name).splitlines():
            if line.upper().startswith("AES-"):
                # The last column: 16 KiB blocks, in thousands of bytes/s.
                out[key] = float(line.split()[-1].rstrip("k")) / 1000.0
    text = read("speed-pkey.txt")
    m = re.search(r"rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", text)
    if m:
        out["rsa2048_sign_per_s"], out["rsa2048_verify_per_s"] = float(m[1]), float(m[2])
    m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", text)
    if m:
        out["ecdsa_p256_sign_per_s"], out["ecdsa_p256_verify_per_s"] = float(m[1]), float(m[2])
    m = re.search(r"ecdh \(X25519\)\s+\S+\s+([\d.]+)", text)
    if m:
        out["x25519_ops_per_s"] = float(m[1])
    # A TLS 1.3 server's public-key work per full handshake: one signature,
    # an X25519 key pair and one X25519 derivation. Its inverse is a rough
    # ceiling of handshakes/s per core, everything else being free.
    x = out.get("x25519_ops_per_s")
    for sig, key in (("ecdsa_p256_sign_per_s", "ecdsa"), ("rsa2048_sign_per_s", "rsa")):
        if x and out.get(sig):
            out[f"handshake_bound_{key}_per_s"] = 1.0 / (1.0 / out[sig] + 2.0 / x)
    return out


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 1e4:
        return f"{v / 1e3:.0f}k"
    if a >= 1e3:
        return f"{v / 1e3:.1f}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def print_tables(summary, rat, speed, proxies, notes):
    cols = [p for p in proxies if any(p in summary.get(s, {}) for s in summary)]
    if any("direct" in summary.get(s, {}) for s in summary):
        cols.append("direct")
    w = 20
    print()
    print("Medians (min-max) per proxy; every proxy on one core. 'direct' is the")
    print("echo without TLS or proxy: the load side's own limit.")
    print(f"{'':44}" + "".join(f"{c:>{w}}" for c in cols))
    for scen, metric, label, unit, hib, _get in METRICS:
        s = summary.get(scen)
        if not s:
            continue
        row = f"{label + ' (' + unit + ')' + (' ^' if hib else ' v'):44}"
        for c in cols:
            m = s.get(c, {}).get(metric)
            cell = "-" if m is None else f"{fmt(m['median'])} ({fmt(m['min'])}-{fmt(m['max'])})"
            row += f"{cell:>{w}}"
        print(row)
    print("  ^ higher is better, v lower is better")
    peers = [p for p in cols if p not in ("sluice", "direct")]
    if rat and peers:
        print()
        print("Ratios sluice/peer of the medians (above 1 is better for ^, below 1 for v)")
        print(f"{'':44}" + "".join(f"{p:>12}" for p in peers))
        for scen, metric, label, unit, hib, _get in METRICS:
            r = rat.get(scen, {}).get(metric)
            if not r:
                continue
            print(f"{label + (' ^' if hib else ' v'):44}" +
                  "".join(f"{(f'{r[p]:.2f}x' if p in r else '-'):>12}" for p in peers))
    if speed:
        print()
        print("Limits of the proxy's core (openssl speed):")
        for k, v in speed.items():
            print(f"  {k:34} {fmt(v)}")
    if notes:
        print()
        print("Notes:")
        for n in notes:
            print(f"  - {n}")


def write_plot(summary, proxies, work, results, plot_script, title):
    d = os.path.join(work, "plot")
    os.makedirs(d, exist_ok=True)
    labels = {(s, m): (label, unit, hib) for s, m, label, unit, hib, _ in METRICS}
    lines = [f'chart_title = "{title}"', f"npanels = {len(PANELS)}",
             f"array ptitle[{len(PANELS)}]", f"array plimit[{len(PANELS)}]"]
    for i, (scen, metric) in enumerate(PANELS, 1):
        label, unit, hib = labels[(scen, metric)]
        arrow = "higher is better" if hib else "lower is better"
        lines.append(f'ptitle[{i}] = "{label} ({unit}), {arrow}"')
        direct = summary.get(scen, {}).get("direct", {}).get(metric)
        lines.append(f"plimit[{i}] = {direct['median'] if direct else 0}")
        rows = []
        for p in proxies:
            m = summary.get(scen, {}).get(p, {}).get(metric)
            if m:
                rows.append(f'"{p}" {m["median"]} {m["min"]} {m["max"]} '
                            f'{1 if p == "sluice" else 2}\n')
        with open(os.path.join(d, f"panel{i}.dat"), "w") as f:
            # gnuplot's stats needs a point: an empty panel gets a zero bar.
            f.writelines(rows or ['"no data" 0 0 0 2\n'])
    with open(os.path.join(d, "panels.gp"), "w") as f:
        f.write("\n".join(lines) + "\n")
    svg = os.path.join(results, "latest.svg")
    try:
        subprocess.run(["gnuplot", "-e", f'datadir="{d}"; outfile="{svg}"', plot_script],
                       check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"bench/report.py: no chart: {e}", file=sys.stderr)
        return None
    return svg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--plot", required=True)
    ap.add_argument("--proxies", default="sluice haproxy nginx hitch stunnel")
    ap.add_argument("--quick", default="0")
    a = ap.parse_args()
    proxies = a.proxies.split()
    runs = load_runs(os.path.join(a.work, "runs.jsonl"))
    summary, notes = summarize(runs)
    rat = ratios(summary)
    speed = parse_speed(a.work)
    machine = ""
    mpath = os.path.join(a.results, "machine.txt")
    if os.path.exists(mpath):
        machine = open(mpath).read()
    quick = a.quick == "1"
    doc = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": quick,
        "machine": machine,
        "metrics": [{"scenario": s, "metric": m, "label": l, "unit": u,
                     "higher_is_better": h} for s, m, l, u, h, _ in METRICS],
        "summary": summary,
        "ratios_sluice_over_peer": rat,
        "limits_openssl_speed": speed,
        "notes": notes,
        "runs": runs,
    }
    with open(os.path.join(a.results, "latest.json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    print_tables(summary, rat, speed, proxies, notes)
    title = "sluice vs peers, one core each" + (" (quick smoke run: not a measurement)"
                                               if quick else "")
    svg = write_plot(summary, proxies, a.work, a.results, a.plot, title)
    print()
    print(f"wrote {os.path.join(a.results, 'latest.json')}" + (f" and {svg}" if svg else ""))


if __name__ == "__main__":
    main()
