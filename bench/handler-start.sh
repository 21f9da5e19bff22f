#!/bin/sh
# Start-up cost of the fence-event handler, the verb Consul runs for every
# event delivery (etc/consul/fence-watch.json): `vigil fence-handler -c FILE`
# with an empty event list on stdin, i.e. process start, CLI, config load and
# the handled-events store, nothing acting. Run as root from the package root
# after `npm run build`:
#   sh bench/handler-start.sh [RUNS]
# Uses hyperfine when installed (mean ± σ, user and system time), else a
# plain loop (median of RUNS wall-clock runs).
set -eu
RUNS=${1:-30}
DIR=$(mktemp -d /tmp/vigil-hstart-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
chmod 755 "$DIR"
mkdir -m 700 "$DIR/state"
cat > "$DIR/vigil.yml" <<YML
node: cmp-01
state_dir: $DIR/state
pidfile: $DIR/vigil.pid
log: { level: info, file: $DIR/handler.log }
fence_handler:
  event: fence
fence:
  dry_run: true
YML
chmod 644 "$DIR/vigil.yml"
echo '[]' > "$DIR/empty.json"
CMD="node bin/vigil fence-handler -c $DIR/vigil.yml < $DIR/empty.json"
if command -v hyperfine >/dev/null 2>&1; then
  hyperfine --warmup 3 --runs "$RUNS" "$CMD"
else
  i=0
  while [ "$i" -lt "$RUNS" ]; do
    s=$(date +%s%N); sh -c "$CMD" >/dev/null; e=$(date +%s%N)
    echo $(( (e - s) / 1000 )); i=$((i + 1))
  done | sort -n | awk '{a[NR]=$1} END {printf "%d runs: median %.1f ms, min %.1f ms, max %.1f ms\n", NR, a[int((NR+1)/2)]/1000, a[1]/1000, a[NR]/1000}'
fi
