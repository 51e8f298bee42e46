#!/usr/bin/env bash
# node-vs-fio.sh STRATA_BENCH [DIR] [SECONDS] [ROUNDS]
#
# Runs fio (ioengine=io_uring) and strata-bench node on the same directory in
# the same run and prints the ratios the storage node is held to:
#   large-fragment durable PUT MB/s  vs fio sequential write (fdatasync every
#                                       64 MiB and at the end), target >= 80%
#   4 KiB durable PUT/s at conc. 64  vs fio 4 KiB randwrite, fsync=1,
#                                       iodepth 64, and the absolute 20,000/s
# This VM's disk moves by 3x from one minute to the next (fio's sequential
# write measured 340, 608 and 973 MB/s in three back-to-back runs), so one
# pair of numbers says little: ROUNDS (default 3) alternates fio and the node
# and the verdict uses the medians.
# JSON phases (strata-bench) go to DIR/node-R.json, fio's to DIR/fio-NAME-R.json.
set -euo pipefail
bench=${1:?usage: node-vs-fio.sh STRATA_BENCH [DIR] [SECONDS] [ROUNDS]}
dir=${2:-/var/tmp/strata-node-vs-fio}
secs=${3:-5}
rounds=${4:-3}
command -v fio >/dev/null || { echo "SKIP: fio not installed"; exit 77; }
rm -rf "$dir"
mkdir -p "$dir/fio"
trap 'rm -rf "$dir/fio" "$dir/node"' EXIT

fio_json() {	# fio_json NAME ROUND ARGS...: one fio job, JSON to DIR/fio-NAME-ROUND.json
	local name=$1 round=$2
	shift 2
	fio --name="$name" --directory="$dir/fio" --ioengine=io_uring \
	    --output-format=json --output="$dir/fio-$name-$round.json" "$@" >/dev/null
	rm -f "$dir/fio/"*
}

for round in $(seq 1 "$rounds"); do
	echo "round $round/$rounds (load $(cut -d' ' -f1 /proc/loadavg)): fio seq write 1 MiB iodepth 16" \
	     "fdatasync/64 MiB; fio 4 KiB randwrite fsync=1 iodepth 64; node 4 KiB + 1 MiB x64, 64 MiB x4"
	fio_json seqwrite "$round" --rw=write --bs=1M --iodepth=16 --size=2G \
		--fdatasync=64 --end_fsync=1
	fio_json randwrite "$round" --rw=randwrite --bs=4k --iodepth=64 --size=256M \
		--fsync=1 --time_based --runtime="$secs"
	"$bench" node --dir "$dir/node" --sizes 4k,1m --conc 64 --seconds "$secs" \
		--puts-only --out "$dir/node-$round.json" 2>/dev/null >/dev/null
	"$bench" node --dir "$dir/node" --sizes 64m --conc 4 --seconds "$secs" \
		--puts-only --out "$dir/node-$round.json" 2>/dev/null >/dev/null
done

python3 - "$dir" "$rounds" <<'PY'
import json, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
rows = []
for r in range(1, rounds + 1):
    seq = json.load(open(f"{d}/fio-seqwrite-{r}.json"))["jobs"][0]["write"]
    rnd = json.load(open(f"{d}/fio-randwrite-{r}.json"))["jobs"][0]["write"]
    node = {}
    for line in open(f"{d}/node-{r}.json"):
        p = json.loads(line)
        node[p["phase"]] = p["results"]
        load = p["machine"]["loadavg"][0]
    rows.append({
        "load": load,
        "fio_seq": seq["bw_bytes"] / 1e6,
        "node_1m": node["put-1048576-c64"]["mb_per_s"],
        "node_64m": node["put-67108864-c4"]["mb_per_s"],
        "fio_4k": rnd["iops"],
        "node_4k": node["put-4096-c64"]["ops_per_s"],
        "per_commit": node["put-4096-c64"]["puts_per_commit"],
    })
for r in rows:
    r["big_pct"] = r["node_64m"] / r["fio_seq"] * 100
    r["mid_pct"] = r["node_1m"] / r["fio_seq"] * 100
med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
def line(label, key, fmt, unit):
    vals = " ".join(format(r[key], fmt) for r in rows)
    print(f"{label:26} {format(med[key], fmt)} {unit:6} (rounds: {vals})")
line("load average", "load", "8.1f", "")
line("fio seq write", "fio_seq", "8.1f", "MB/s")
line("node PUT 1 MiB c64", "node_1m", "8.1f", "MB/s")
line("node PUT 64 MiB c4", "node_64m", "8.1f", "MB/s")
line("  64 MiB / fio seq", "big_pct", "8.1f", "%")
line("  1 MiB / fio seq", "mid_pct", "8.1f", "%")
line("fio 4k randwrite fsync=1", "fio_4k", "8.0f", "IOPS")
line("node PUT 4 KiB c64", "node_4k", "8.0f", "ops/s")
line("  PUTs per group commit", "per_commit", "8.1f", "")
print(f"median large-fragment ratio {med['big_pct']:.1f} % (target >= 80 %: "
      f"{'met' if med['big_pct'] >= 80 else 'NOT met'}); "
      f"median 4 KiB durable PUT {med['node_4k']:.0f}/s (target >= 20,000/s: "
      f"{'met' if med['node_4k'] >= 20000 else 'NOT met'})")
PY
