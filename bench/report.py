#!/usr/bin/env python3
"""bench/report.py - turns bench/run's raw runs into the comparison.

Reads WORK/runs.jsonl (one line per run: scenario, proxy, repetition, the
machine's idleness before it, and sluice-bench's JSON) and the openssl speed
outputs; prints a table of medians (min-max), of ratios sluice/peer and of
issue #5's targets checked against the best peer of each scenario; writes
RESULTS/latest.json and, through gnuplot and bench/plot.gp,
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
] + [
    # scale: sluice alone on two CPUs, one worker against two (bench/run
    # records the runs as scenarios scale_w1 and scale_w2).
    (f"scale_w{w}", metric, f"scale: {label} workers {w}", unit, hib, get)
    for metric, label, unit, hib, get in (
        ("requests_per_s", "requests/s", "req/s", True,
         lambda r: r["bench"]["requests_per_s"]),
        ("cpu_us_per_request", "sluice CPU per request,", "us", False,
         lambda r: r["bench"].get("server_cpu_us_per_request")),
        ("requests_per_cpu_s", "requests per sluice CPU-s,", "req", True,
         lambda r: per_core_second(r["bench"].get("server_cpu_us_per_request"))))
    for w in (1, 2)
]

# Issue #5's targets, from the medians of one run:
# (label, scenario, metric, op, factor, reference). A target is met when
# sluice's median `op` factor x the reference's: "ge" at least, "le" at
# most; op None is a figure shown for information. The reference is
#   ("peer", by)        the best peer of the scenario by metric `by` (in that
#                       metric's own direction), compared on `metric`
#   ("limit", value)    a fixed value
#   ("sluice", scen)    sluice's own median of `metric` in another scenario
TARGETS = [
    ("small: CPU per request <= 0.8 x best peer's", "small", "cpu_us_per_request",
     "le", 0.8, ("peer", "cpu_us_per_request")),
    ("small: p99 <= best peer's", "small", "p99_us", "le", 1.0, ("peer", "p99_us")),
    ("bulk: MB/s >= best peer's", "bulk", "mb_per_s", "ge", 1.0, ("peer", "mb_per_s")),
    ("bulk: CPU per MB <= that of the best-MB/s peer", "bulk", "cpu_us_per_mb", "le", 1.0,
     ("peer", "mb_per_s")),
    ("ECDSA: handshakes/s >= best peer's", "hs_ecdsa", "handshakes_per_s", "ge", 1.0,
     ("peer", "handshakes_per_s")),
    ("ECDSA: handshakes per proxy core-s >= best peer's", "hs_ecdsa",
     "handshakes_per_core_s", "ge", 1.0, ("peer", "handshakes_per_core_s")),
    ("RSA: handshakes/s >= best peer's", "hs_rsa", "handshakes_per_s", "ge", 1.0,
     ("peer", "handshakes_per_s")),
    ("RSA: handshakes per proxy core-s >= best peer's", "hs_rsa", "handshakes_per_core_s",
     "ge", 1.0, ("peer", "handshakes_per_core_s")),
    ("memory: KiB per idle connection <= 16", "memory", "kib_per_conn", "le", 1.0,
     ("limit", 16.0)),
    ("scale: requests/s, workers 2 >= 1.7 x workers 1", "scale_w2", "requests_per_s", "ge",
     1.7, ("sluice", "scale_w1")),
    ("scale: requests per sluice CPU-s, workers 2 / 1", "scale_w2", "requests_per_cpu_s",
     None, 1.0, ("sluice", "scale_w1")),
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
        share = b.get("cpu_core_share", 0) / max(b.get("threads", 1), 1)
        if r["scenario"] != "memory" and share > BENCH_BOUND:
            notes.append(f"{tag}: sluice-bench used {100 * share:.0f}% of its "
                         "cores: the figure may be the load generator's limit")
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


def targets(summary):
    """Each target of TARGETS checked against the medians: one dict per
    row, with the reference it was compared with and MET, NOT MET, NO DATA
    (or INFO for a figure without a threshold)."""
    hib = {(s, m): h for s, m, _l, _u, h, _g in METRICS}

    def med(scen, proxy, metric):
        return summary.get(scen, {}).get(proxy, {}).get(metric, {}).get("median")

    rows = []
    for label, scen, metric, op, factor, (kind, arg) in TARGETS:
        mine, ref_name, ref = med(scen, "sluice", metric), None, None
        if kind == "limit":
            ref_name, ref = "limit", arg
        elif kind == "sluice":
            ref_name, ref = f"sluice ({arg})", med(arg, "sluice", metric)
        else:
            peers = [(v, p) for p in summary.get(scen, {}) if p not in ("sluice", "sluice-base", "direct")
                     for v in [med(scen, p, arg)] if v is not None]
            if peers:
                best = (max if hib[(scen, arg)] else min)(peers)[1]
                ref_name, ref = best, med(scen, best, metric)
        ratio = mine / ref if mine is not None and ref else None
        if ratio is None:
            status = "NO DATA"
        elif op is None:
            status = "INFO"
        else:
            status = "MET" if (ratio >= factor if op == "ge" else ratio <= factor) else "NOT MET"
        rows.append({"target": label, "scenario": scen, "metric": metric,
                     "required": None if op is None else
                     f"{'>=' if op == 'ge' else '<='} {factor} x reference",
                     "sluice": mine, "reference": ref_name, "reference_value": ref,
                     "ratio": ratio, "status": status})
    return rows


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


def print_targets(rows):
    print()
    print("Targets (issue #5), sluice's median against the best peer's of the same run;")
    print("ratio = sluice / reference")
    print(f"{'':52}{'sluice':>10}  {'reference':<18}{'value':>9}{'ratio':>9}  status")
    for t in rows:
        ratio = "-" if t["ratio"] is None else f"{t['ratio']:.2f}x"
        print(f"{t['target']:52}{fmt(t['sluice']):>10}  {t['reference'] or '-':<18}"
              f"{fmt(t['reference_value']):>9}{ratio:>9}  {t['status']}")


def print_tables(summary, rat, tgt, speed, proxies, notes):
    cols = [p for p in proxies if any(p in summary.get(s, {}) for s in summary)]
    if any("direct" in summary.get(s, {}) for s in summary):
        cols.append("direct")
    w = 20
    lw = max(len(f"{m[2]} ({m[3]}) ^") for m in METRICS) + 2
    print()
    print("Medians (min-max) per proxy; every proxy on one core. 'direct' is the")
    print("echo without TLS or proxy: the load side's own limit. scale: sluice on two")
    print("CPUs, shared with sluice-bench.")
    print(f"{'':{lw}}" + "".join(f"{c:>{w}}" for c in cols))
    for scen, metric, label, unit, hib, _get in METRICS:
        s = summary.get(scen)
        if not s:
            continue
        row = f"{label + ' (' + unit + ')' + (' ^' if hib else ' v'):{lw}}"
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
        print(f"{'':{lw}}" + "".join(f"{p:>12}" for p in peers))
        for scen, metric, label, unit, hib, _get in METRICS:
            r = rat.get(scen, {}).get(metric)
            if not r:
                continue
            print(f"{label + (' ^' if hib else ' v'):{lw}}" +
                  "".join(f"{(f'{r[p]:.2f}x' if p in r else '-'):>12}" for p in peers))
    print_targets(tgt)
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
    tgt = targets(summary)
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
        "targets": tgt,
        "limits_openssl_speed": speed,
        "notes": notes,
        "runs": runs,
    }
    with open(os.path.join(a.results, "latest.json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    print_tables(summary, rat, tgt, speed, proxies, notes)
    title = "sluice vs peers, one core each" + (" (quick smoke run: not a measurement)"
                                               if quick else "")
    svg = write_plot(summary, proxies, a.work, a.results, a.plot, title)
    print()
    print(f"wrote {os.path.join(a.results, 'latest.json')}" + (f" and {svg}" if svg else ""))


if __name__ == "__main__":
    main()
