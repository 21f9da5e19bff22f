#!/bin/bash
# bench/node-floor.sh: what an empty Node process costs per wake-up on this
# machine, the floor under any JavaScript daemon's CPU at rest. Two empty
# `node` processes (the unit's --max-semi-space-size=1) wake 5 times and once
# a second; after 40 s of warm-up, 120 s of schedstat (CPU ns, timeslices).
# Run it beside `bench/wakeups.ts` to compare with a vigil pair in the same
# window. Prints one line per process and writes bench/results/node-floor.json
# (BENCH_RESULTS_DIR=DIR writes there instead).
set -euo pipefail
warm=${WARMUP_S:-40}; window=${WINDOW_S:-120}
dir=${BENCH_RESULTS_DIR:-$(cd "$(dirname "$0")" && pwd)/results}
node --max-semi-space-size=1 -e 'setInterval(()=>{},200)' & p5=$!
node --max-semi-space-size=1 -e 'setInterval(()=>{},1000)' & p1=$!
trap 'kill $p5 $p1 2>/dev/null || true' EXIT
sleep "$warm"
rd() { awk '{print $1, $3}' "/proc/$1/schedstat"; }
a5=$(rd $p5); a1=$(rd $p1); t0=$(date +%s.%N)
sleep "$window"
b5=$(rd $p5); b1=$(rd $p1); t1=$(date +%s.%N)
python3 - "$a5" "$b5" "$a1" "$b1" "$t0" "$t1" "$dir/node-floor.json" "$(node --version)" <<'PY'
import json, sys
a5, b5, a1, b1 = [list(map(int, x.split())) for x in sys.argv[1:5]]
dt = float(sys.argv[6]) - float(sys.argv[5])
runs = []
for name, a, b in (("interval 200 ms", a5, b5), ("interval 1 s", a1, b1)):
    cpu = (b[0] - a[0]) / 1e9
    n = b[1] - a[1]
    r = {"process": f"empty node, {name}", "cpu_s_per_h": round(cpu / dt * 3600, 3),
         "wakeups_per_s": round(n / dt, 2), "cpu_us_per_wakeup": round(cpu / max(n, 1) * 1e6)}
    runs.append(r)
    print(f"{r['process']}: {r['cpu_s_per_h']} CPU s/h, {r['wakeups_per_s']} wake-ups/s, {r['cpu_us_per_wakeup']} us per wake-up")
doc = {"bench": "node-floor", "node": sys.argv[8], "window_s": round(dt, 1), "flags": "--max-semi-space-size=1", "runs": runs}
with open(sys.argv[7], "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
PY
