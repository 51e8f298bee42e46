#!/usr/bin/python3
"""bench/report.py: the summary of a `tools/dev bench` run.

  report.py RESULTS.json    writes RESULTS.md (markdown tables: S3 by size,
                            concurrency and operation, Strata against the
                            peer and against the raw limits; ring, ec, node,
                            fio) and RESULTS-throughput.png / -latency.png
                            (gnuplot) next to it
  report.py --fio DIR       prints node-vs-fio.sh's fio results in DIR as
                            phases of the shared JSON format (stdout)
"""
import json
import os
import subprocess
import sys
from collections import defaultdict


def machine():
    m = {"cores": os.cpu_count()}
    try:
        with open("/proc/meminfo") as f:
            m["mem_bytes"] = int(f.readline().split()[1]) * 1024
        m["loadavg"] = [float(x) for x in open("/proc/loadavg").read().split()[:3]]
        m["kernel"] = os.uname().release
    except OSError:
        pass
    return m


def fio_phases(d):
    rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                         text=True, cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    for name, desc in (("seqwrite", "1 MiB sequential write, iodepth 16, fdatasync every 64 MiB"),
                       ("randwrite", "4 KiB random write, fsync=1, iodepth 64")):
        try:
            w = json.load(open(os.path.join(d, f"fio-{name}.json")))["jobs"][0]["write"]
        except (OSError, ValueError, KeyError, IndexError):
            continue
        print(json.dumps({"bench": "fio", "phase": name, "params": {"job": desc, "ioengine": "io_uring"},
                          "results": {"mb_per_s": w["bw_bytes"] / 1e6, "ops_per_s": w["iops"],
                                      "p99_us": w.get("clat_ns", {}).get("percentile", {}).get("99.000000", 0) / 1e3},
                          "machine": machine(), "git_rev": rev or "unknown"}))


SIZES = {"4K": 4096, "64K": 65536, "1M": 1 << 20, "16M": 16 << 20}


def size_label(n):
    for k, v in SIZES.items():
        if v == n:
            return k
    return str(n)


def fmt(x, d=0):
    if x is None:
        return "-"
    return f"{x:,.{d}f}"


def main(path):
    phases = [json.loads(line) for line in open(path) if line.strip()]
    base = path[:-5] if path.endswith(".json") else path
    s3 = defaultdict(dict)      # (op, size, conc) -> target -> results
    other = []
    loads = []
    for p in phases:
        la = p.get("machine", {}).get("loadavg")
        if la:
            loads.append(la[0])
        if p["bench"] != "s3":
            other.append(p)
            continue
        par = p["params"]
        if "target" not in par:
            continue            # the ratio rows: recomputed below
        key = (p["phase"], int(par["size_mean"]), par["concurrency"])
        s3[key][par["target"]] = dict(p["results"], endpoint=par["endpoint"])
    first = phases[0] if phases else {}
    m = first.get("machine", {})
    peer = any("b" in v for v in s3.values())
    out = []
    out.append(f"# strata-bench suite: {os.path.basename(base)}\n")
    out.append(f"revision {first.get('git_rev', '?')}, {first.get('time', '?')}, "
               f"{m.get('cores', '?')} cores / {m.get('mem_bytes', 0) / 2**30:.0f} GiB, "
               f"kernel {m.get('kernel', '?')}, Release; load average (1 min) during the run "
               f"{min(loads, default=0):.1f}..{max(loads, default=0):.1f}\n")
    out.append("## S3\n")
    hdr = "| op | size | conc | Strata ops/s | MB/s | p50 ms | p99 ms | errors |"
    sep = "| -- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    if peer:
        hdr += " Swift ops/s | MB/s | p50 ms | p99 ms | errors | Strata/Swift ops/s |"
        sep += " ---: | ---: | ---: | ---: | ---: | ---: |"
    out += [hdr, sep]
    order = {"put": 0, "get": 1, "head": 2, "list": 3, "delete": 4, "mixed": 5}
    for key in sorted(s3, key=lambda k: (order.get(k[0], 9), k[1], k[2])):
        op, size, conc = key
        row = [op, size_label(size), str(conc)]
        for t in ("a", "b") if peer else ("a",):
            r = s3[key].get(t)
            if not r:
                row += ["-"] * 5
                continue
            errs = r["errors"]
            kinds = ", ".join(f"{k} x{v}" for k, v in r.get("errors_by_type", {}).items())
            row += [fmt(r["ops_per_s"]), fmt(r["mb_per_s"], 1), fmt(r["p50_us"] / 1e3, 1),
                    fmt(r["p99_us"] / 1e3, 1), f"{errs}" + (f" ({kinds})" if errs else "")]
        if peer:
            a, b = s3[key].get("a"), s3[key].get("b")
            ok = a and b and b["ops_per_s"] > 0 and a["errors"] == 0 and b["errors"] == 0
            row.append(f"{a['ops_per_s'] / b['ops_per_s']:.2f}" if ok else "-")
        out.append("| " + " | ".join(row) + " |")
    cpu = [r.get("client_cpu_pct", 0) for v in s3.values() for r in v.values()]
    if cpu:
        out.append(f"\nClient (strata-bench) CPU: at most {max(cpu):.0f}% of one core in any phase.\n")

    # The raw limits beside the S3 numbers.
    lim = {}
    for p in other:
        r, par = p["results"], p["params"]
        if p["bench"] == "fio":
            lim[f"fio {p['phase']}"] = r
        elif p["bench"] == "ec" and p["phase"] == "encode" and par.get("k") == 4:
            lim[f"ec encode 4+2 unit {size_label(par['unit'])}"] = r
        elif p["bench"] == "node" and p["phase"].startswith("put"):
            lim[f"node {p['phase']}"] = r
    if lim:
        out.append("## Against the raw limits\n")
        out.append("| limit | value | best S3 PUT (Strata) | S3 / limit |")
        out.append("| ----- | ----: | ----: | ----: |")
        best_put = max((v["a"]["mb_per_s"] for k, v in s3.items()
                        if k[0] == "put" and "a" in v and v["a"]["errors"] == 0), default=0)
        best_put_4k = max((v["a"]["ops_per_s"] for k, v in s3.items()
                           if k[0] == "put" and k[1] == 4096 and "a" in v), default=0)
        for name, r in lim.items():
            if "gb_per_s" in r:
                val, unit, s3v = r["gb_per_s"] * 1000, "MB/s", best_put
            elif name == "fio randwrite" or ("4096" in name):
                val, unit, s3v = r["ops_per_s"], "ops/s", best_put_4k
            else:
                val, unit, s3v = r["mb_per_s"], "MB/s", best_put
            out.append(f"| {name} | {fmt(val)} {unit} | {fmt(s3v)} {unit} | "
                       f"{(s3v / val * 100 if val else 0):.1f}% |")
    out.append("\n## Other phases\n")
    out.append("| bench | phase | params | results |")
    out.append("| ----- | ----- | ------ | ------- |")
    for p in other:
        par = ", ".join(f"{k}={v}" for k, v in p["params"].items() if not isinstance(v, (dict, list)))
        res = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in p["results"].items() if isinstance(v, (int, float)))
        out.append(f"| {p['bench']} | {p['phase']} | {par} | {res} |")
    with open(base + ".md", "w") as f:
        f.write("\n".join(out) + "\n")
    plots(base, s3, peer)
    print("\n".join(out[:60]))


def plots(base, s3, peer):
    """MB/s and p50 latency by object size: one line per op, concurrency, target."""
    series = defaultdict(list)
    for (op, size, conc), v in s3.items():
        if op not in ("put", "get"):
            continue
        for t, r in v.items():
            series[(op, conc, t)].append((size, r["mb_per_s"], r["p50_us"] / 1e3, r["p99_us"] / 1e3))
    if not series:
        return
    dat = base + "-plot.dat"
    names = []
    with open(dat, "w") as f:
        for (op, conc, t), pts in sorted(series.items()):
            names.append(f"{'Strata' if t == 'a' else 'Swift'} {op.upper()} c{conc}")
            f.write(f"# {names[-1]}\n")
            for size, mbs, p50, p99 in sorted(pts):
                f.write(f"{size} {mbs} {p50} {p99}\n")
            f.write("\n\n")
    keys = sorted(series)

    def script(png, col, ylabel, title, logy):
        lines = [f"set terminal pngcairo size 1000,600 noenhanced" if have_cairo() else
                 "set terminal png size 1000,600 noenhanced",
                 f"set output '{png}'", f"set title '{title}'", "set logscale x 2",
                 "set xlabel 'object size (bytes)'", f"set ylabel '{ylabel}'",
                 "set key outside right", "set grid", "set xrange [3000:24000000]",
                 "set xtics (" + ", ".join(f"'{k}' {v}" for k, v in SIZES.items()) + ")"]
        if logy:
            lines.append("set logscale y 10")
        plot = []
        pairs = sorted({(op, conc) for op, conc, _ in keys})
        for i, (op, conc, t) in enumerate(keys):
            # one colour per op and concurrency; the peer dashed beside Strata
            style = f"lc {pairs.index((op, conc)) + 1} dt {2 if t == 'b' else 1}"
            plot.append(f"'{dat}' index {i} using 1:{col} with linespoints {style} lw 2 title '{names[i]}'")
        lines.append("plot " + ", \\\n     ".join(plot))
        return "\n".join(lines) + "\n"

    for suffix, col, ylabel, title, logy in (
            ("throughput", 2, "MB/s (10^6 B/s)", "S3 throughput by object size", True),
            ("latency", 3, "p50 latency (ms)", "S3 median latency by object size", True)):
        png = f"{base}-{suffix}.png"
        try:
            subprocess.run(["gnuplot"], input=script(png, col, ylabel, title, logy), text=True,
                           check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"report.py: gnuplot failed for {png}: {e}", file=sys.stderr)
    os.unlink(dat)


def have_cairo():
    try:
        out = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
        return "pngcairo" in out.stdout + out.stderr
    except OSError:
        return False


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--fio":
        fio_phases(sys.argv[2])
    elif len(sys.argv) == 2:
        main(sys.argv[1])
    else:
        sys.exit(__doc__)
