#!/usr/bin/env bash
# Turn a serial log with parkvisor trace lines into a per-CPU timeline picture.
#
# Usage: scripts/trace-plot.sh [options] LOG [OUT.svg]
#   LOG            serial log (guest output around the trace lines is ignored),
#                  or - for stdin
#   OUT.svg        output (default: LOG with its extension replaced by .svg)
#   --png          also write OUT.png (needs rsvg-convert: apt-get install librsvg2-bin)
#   --from SEC     start of the time window (hypervisor seconds)
#   --to SEC       end of the time window
#   --fast-stop N  zoom on the N-th fast-stop (0-based)
#   --cpus N       draw at least N lanes
#   --width PX     picture width (default 1200)
#   --title TEXT   picture title
#   --quiet        no summary on stderr
#
# Builds the host tool hypervisor/trace-plot with cargo (debug profile, its own
# target directory under .cache so it never waits on cross builds) and runs it.
# Prints the written file name(s) on stdout, a short summary on stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ $# -eq 0 || $1 == -h || $1 == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    [[ $# -eq 0 ]] && exit 2 || exit 0
fi

target="${PV_TRACE_PLOT_TARGET:-$root/.cache/target-host}"
cargo build --quiet --manifest-path "$root/Cargo.toml" -p trace-plot \
    --target-dir "$target" >&2 || {
    echo "trace-plot.sh: error: building trace-plot failed" >&2
    exit 1
}
exec "$target/debug/trace-plot" "$@"
