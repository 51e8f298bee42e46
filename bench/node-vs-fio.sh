#!/usr/bin/env bash
# node-vs-fio.sh STRATA_BENCH [DIR] [SECONDS]
#
# Runs fio (ioengine=io_uring) and strata-bench node on the same directory in
# the same run and prints the ratios the storage node is held to:
#   large-fragment durable PUT MB/s  vs fio sequential write (fdatasync every
#                                       64 MiB and at the end), target >= 80%
#   4 KiB durable PUT/s at conc. 64  vs fio 4 KiB randwrite, fsync=1,
#                                       iodepth 64, and the absolute 20,000/s
# JSON phases (strata-bench) go to DIR/node.json, fio's to DIR/fio-*.json.
set -euo pipefail
bench=${1:?usage: node-vs-fio.sh STRATA_BENCH [DIR] [SECONDS]}
dir=${2:-/var/tmp/strata-node-vs-fio}
secs=${3:-5}
command -v fio >/dev/null || { echo "SKIP: fio not installed"; exit 77; }
rm -rf "$dir"
mkdir -p "$dir/fio"
trap 'rm -rf "$dir/fio" "$dir/node"' EXIT

fio_json() {	# fio_json NAME ARGS...: runs one fio job, JSON to DIR/fio-NAME.json
	local name=$1
	shift
	fio --name="$name" --directory="$dir/fio" --ioengine=io_uring \
	    --output-format=json --output="$dir/fio-$name.json" "$@" >/dev/null
	rm -f "$dir/fio/"*
}

echo "fio: sequential write, 1 MiB blocks, iodepth 16, fdatasync every 64 MiB + at end"
fio_json seqwrite --rw=write --bs=1M --iodepth=16 --size=2G --fdatasync=64 \
	--end_fsync=1
echo "fio: 4 KiB randwrite, fsync=1, iodepth 64"
fio_json randwrite --rw=randwrite --bs=4k --iodepth=64 --size=256M --fsync=1 \
	--time_based --runtime="$secs"

echo "strata-bench node: 4 KiB and 1 MiB at concurrency 64, 64 MiB at 4"
"$bench" node --dir "$dir/node" --sizes 4k,1m --conc 64 --seconds "$secs" \
	--out "$dir/node.json" 2>/dev/null
"$bench" node --dir "$dir/node" --sizes 64m --conc 4 --seconds "$secs" \
	--out "$dir/node.json" 2>/dev/null

python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
seq = json.load(open(f"{d}/fio-seqwrite.json"))["jobs"][0]["write"]
rnd = json.load(open(f"{d}/fio-randwrite.json"))["jobs"][0]["write"]
fio_seq_mbs = seq["bw_bytes"] / 1e6
fio_rnd_iops = rnd["iops"]
node = {}
for line in open(f"{d}/node.json"):
    p = json.loads(line)
    node[p["phase"]] = p["results"]
put4k = node["put-4096-c64"]["ops_per_s"]
big = node["put-67108864-c4"]["mb_per_s"]
mid = node["put-1048576-c64"]["mb_per_s"]
print(f"fio seq write            {fio_seq_mbs:10.1f} MB/s")
print(f"node PUT 1 MiB c64       {node['put-1048576-c64']['mb_per_s']:10.1f} MB/s")
print(f"node PUT 64 MiB c4       {node['put-67108864-c4']['mb_per_s']:10.1f} MB/s")
print(f"  64 MiB / fio seq       {big / fio_seq_mbs * 100:10.1f} %   (large-fragment target >= 80 %)")
print(f"  1 MiB / fio seq        {mid / fio_seq_mbs * 100:10.1f} %")
print(f"fio 4k randwrite fsync=1 {fio_rnd_iops:10.0f} IOPS")
print(f"node PUT 4 KiB c64       {put4k:10.0f} ops/s  "
      f"({node['put-4096-c64']['puts_per_commit']:.1f} PUTs per group commit)")
print(f"  4 KiB ratio            {put4k / fio_rnd_iops * 100:10.1f} %   "
      f"(target >= 20,000/s: {'met' if put4k >= 20000 else 'NOT met'})")
PY
