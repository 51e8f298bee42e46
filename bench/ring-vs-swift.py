#!/usr/bin/python3
"""Strata's ring builder against OpenStack Swift's, on the same layouts.

    ring-vs-swift.py STRATA_RING [--check] [--out FILE]

Each scenario builds a layout with `strata-ring` and with Swift's own
RingBuilder (Debian package python3-swift, the code behind
swift-ring-builder), applies the same changes to both (add a node, remove a
device, drain a device), and measures both the same way from their
assignments:

  balance   worst device's |placements / weighted share - 1|, in %
  moved     placements that changed device (per partition, as sets, so a
            reordering of the same devices is not counted against Swift)
  sharing   partitions with two placements in one zone

One JSON object per step (the strata-bench phase format) goes to stdout or
--out. --check exits 1 unless Strata is equal or better on balance and
movement at every step ("equal": within one placement on the worst device,
and within 0.5% of the movement), and 77 (skipped) when Swift is not
installed.
"""
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

try:
    from swift.common.ring import RingBuilder
except ImportError:
    print("SKIP: python3-swift is not installed (tools/dev installs it)")
    sys.exit(77)

SEED = 1

# name, part power, placements (replicas or k+m), strata policy flag, layout,
# changes. A layout is a list of (zone, node, device, weight).
def grid(zones, nodes, devs, weight=100.0):
    return [(z, n, d, weight) for z in range(1, zones + 1)
            for n in range(nodes) for d in range(devs)]


def weighted_layout():
    return [(1 + i % 4, i, 0, 100.0 * (1 + i % 4 + (i // 4) % 2)) for i in range(12)]


SCENARIOS = [
    ("r3-3zones-24dev", 14, 3, "--replicas=3", grid(3, 4, 2),
     [("add-node", [(1, 4, 0, 100.0), (1, 4, 1, 100.0)]),
      ("remove-device", 5)]),
    ("ec42-6zones-24dev", 12, 6, "--ec=4+2", grid(6, 2, 2),
     [("add-node", [(1, 2, 0, 100.0), (1, 2, 1, 100.0)]),
      ("remove-device", 3)]),
    ("r3-2zones-6dev", 12, 3, "--replicas=3", grid(2, 3, 1),
     [("add-node", [(2, 3, 0, 100.0)])]),
    ("r3-weighted-12dev", 14, 3, "--replicas=3", weighted_layout(),
     [("drain-device", 3), ("add-node", [(1, 20, 0, 300.0)])]),
]


def node_addr(zone, node):
    return "10.0.%d.%d:6200" % (zone, node)


def measure(assign, devs, prev):
    """assign: list of per-partition device id lists; devs: id -> (zone, weight)."""
    total = sum(len(a) for a in assign)
    wsum = sum(w for (_z, w) in devs.values())
    held = {i: 0 for i in devs}
    sharing = 0
    for a in assign:
        zones = [devs[d][0] for d in a]
        sharing += len(zones) != len(set(zones))
        for d in a:
            held[d] = held.get(d, 0) + 1
    balance = 0.0
    for d, (_z, w) in devs.items():
        if w > 0:
            want = total * w / wsum
            balance = max(balance, abs(held[d] / want - 1) * 100)
        elif held[d]:
            balance = max(balance, 100.0)
    moved = None
    if prev is not None:
        moved = 0
        for old, new in zip(prev, assign):
            left = list(old)
            for d in new:
                if d in left:
                    left.remove(d)
                else:
                    moved += 1
    return {"balance_pct": balance, "moved": moved,
            "parts_sharing_zone": sharing, "placements": total}


class Strata:
    def __init__(self, tool, tmp, name, part_power, policy):
        self.tool = tool
        self.builder = os.path.join(tmp, name + ".builder")
        self.ring = os.path.join(tmp, name + ".ring")
        self.hour = 480000
        self.devs = {}
        self.run("create", self.builder, "--part-power", str(part_power), policy,
                 "--min-part-hours", "1", "--seed", str(SEED))

    def run(self, *args):
        out = subprocess.run([self.tool] + list(args) + ["--json"], check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out)

    def add(self, zone, node, dev, weight):
        d = self.run("add", self.builder, "--region", "1", "--zone", str(zone),
                     "--node", node_addr(zone, node), "--name", "d%d" % dev,
                     "--weight", repr(weight))
        self.devs[d["id"]] = (zone, weight)

    def remove(self, dev_id):
        self.run("remove", self.builder, str(dev_id))
        del self.devs[dev_id]

    def set_weight(self, dev_id, weight):
        self.run("set-weight", self.builder, str(dev_id), repr(weight))
        self.devs[dev_id] = (self.devs[dev_id][0], weight)

    def rebalance(self):
        self.hour += 2          # min_part_hours (1) has passed
        t0 = time.monotonic()
        self.run("rebalance", self.builder, "--ring", self.ring, "--now-hours", str(self.hour))
        secs = time.monotonic() - t0
        return self.run("show", self.ring, "--assignment")["assignment"], secs


class Swift:
    def __init__(self, part_power, replicas):
        self.b = RingBuilder(part_power, replicas, 1)
        self.devs = {}

    def add(self, zone, node, dev, weight):
        dev_id = self.b.add_dev({"region": 1, "zone": zone, "ip": "10.0.%d.%d" % (zone, node),
                                 "port": 6200, "device": "d%d" % dev, "weight": weight})
        self.devs[dev_id] = (zone, weight)

    def remove(self, dev_id):
        self.b.remove_dev(dev_id)
        del self.devs[dev_id]

    def set_weight(self, dev_id, weight):
        self.b.set_dev_weight(dev_id, weight)
        self.devs[dev_id] = (self.devs[dev_id][0], weight)

    def rebalance(self):
        self.b.pretend_min_part_hours_passed()
        t0 = time.monotonic()
        self.b.rebalance(seed=SEED)
        secs = time.monotonic() - t0
        r2p2d = self.b._replica2part2dev
        parts = self.b.parts
        return [[int(r2p2d[r][p]) for r in range(len(r2p2d))] for p in range(parts)], secs


def machine():
    return {"cores": os.cpu_count(), "kernel": platform.release(), "host": platform.node()}


def git_rev():
    try:
        return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except OSError:
        return "unknown"


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        print(__doc__)
        return 2
    tool = args[0]
    check = "--check" in args
    out = sys.stdout
    if "--out" in args:
        out = open(args[args.index("--out") + 1], "a")
    worse = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, pp, placements, policy, layout, changes in SCENARIOS:
            st, sw = Strata(tool, tmp, name, pp, policy), Swift(pp, placements)
            for impl in (st, sw):
                for zone, node, dev, weight in layout:
                    impl.add(zone, node, dev, weight)
            prev = {}
            steps = [("initial", None)] + changes
            for step, arg in steps:
                res = {}
                for label, impl in (("strata", st), ("swift", sw)):
                    if step == "add-node":
                        for zone, node, dev, weight in arg:
                            impl.add(zone, node, dev, weight)
                    elif step == "remove-device":
                        impl.remove(arg)
                    elif step == "drain-device":
                        impl.set_weight(arg, 0.0)
                    assign, secs = impl.rebalance()
                    res[label] = measure(assign, impl.devs, prev.get(label))
                    res[label]["seconds"] = round(secs, 3)
                    prev[label] = assign
                phase = {"bench": "ring-vs-swift", "phase": "%s/%s" % (name, step),
                         "params": {"part_power": pp, "placements": placements,
                                    "devices": len(st.devs), "seed": SEED},
                         "results": res, "machine": machine(), "git_rev": git_rev(),
                         "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                out.write(json.dumps(phase) + "\n")
                out.flush()
                s, w = res["strata"], res["swift"]
                print("%-34s balance %7.3f%% vs swift %7.3f%%   moved %6s vs %6s   "
                      "sharing-zone %5d vs %5d" % (
                          phase["phase"], s["balance_pct"], w["balance_pct"],
                          s["moved"], w["moved"], s["parts_sharing_zone"],
                          w["parts_sharing_zone"]), file=sys.stderr)
                # "Equal" allows one placement on the worst device (balance
                # is quantized: 1/share of a percent) and 0.5% of movement;
                # anything beyond that counts as worse.
                one_part = 100.0 * len(st.devs) / s["placements"]
                if s["balance_pct"] > w["balance_pct"] + one_part + 1e-6:
                    worse.append("%s: balance %.3f%% > swift %.3f%%" % (
                        phase["phase"], s["balance_pct"], w["balance_pct"]))
                if s["moved"] is not None and s["moved"] > w["moved"] * 1.005:
                    worse.append("%s: moved %d > swift %d" % (phase["phase"], s["moved"], w["moved"]))
    if worse:
        print("Strata is worse than Swift at:\n  " + "\n  ".join(worse), file=sys.stderr)
    return 1 if check and worse else 0


if __name__ == "__main__":
    sys.exit(main())
