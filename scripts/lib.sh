# shellcheck shell=bash
# Shared helpers for parkvisor's shell scripts. Source it; do not run it.
# Sets PV_ROOT (repo root), PV_CACHE (download/build cache) and loads the
# board's KEY=VALUE facts (boards/$PV_BOARD/board.env, default qemu-virt).

PV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PV_CACHE="${PV_CACHE:-$PV_ROOT/.cache}"
PV_BOARD="${PV_BOARD:-qemu-virt}"
# Where the Linux guest ingredients and initramfs images live (used by the
# scripts that source this file).
# shellcheck disable=SC2034
PV_LINUX="$PV_CACHE/linux"

pv_prog="$(basename "$0")"

die() {
    echo "$pv_prog: error: $*" >&2
    exit 1
}

# Progress line (to stderr, so stdout stays the guest's serial output).
note() {
    echo "$pv_prog: $*" >&2
}

# need_value OPTION ARGC: in an option loop, `--opt) need_value "$1" "$#"; v=$2;
# shift 2`: dies with "OPTION needs a value" when the option is the last word
# (instead of set -u's "$2: unbound variable").
need_value() {
    [[ $2 -ge 2 ]] || die "$1 needs a value (see --help)"
}

need_cmd() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found${2:+ ($2)}"
}

pv_load_board() {
    local env="$PV_ROOT/boards/$PV_BOARD/board.env"
    [[ -f $env ]] || die "no board file $env"
    unset MAX_SMP
    # shellcheck disable=SC1090
    source "$env"
}

# Board names (run.sh --board, harness --board) name boards/qemu-<name>:
# virt = boards/qemu-virt (GICv3, the default), virt-gicv2 =
# boards/qemu-virt-gicv2 (GICv2).
pv_board_names() {
    local d names=""
    for d in "$PV_ROOT"/boards/qemu-*/board.env; do
        d="${d%/board.env}"
        names+=" ${d##*/qemu-}"
    done
    echo "${names# }"
}

# pv_select_board NAME: load that board's facts (dies listing the names).
pv_select_board() {
    [[ $1 =~ ^[a-z0-9-]+$ && -f $PV_ROOT/boards/qemu-$1/board.env ]] ||
        die "unknown board '$1' (boards: $(pv_board_names))"
    PV_BOARD="qemu-$1"
    pv_load_board
}

# Seconds since the epoch with milliseconds, for timing steps.
now_ms() {
    date +%s%3N
}

# Convert a QEMU-style size (512M, 2G, 1024) to bytes; plain numbers are MiB as
# in QEMU's -m.
size_to_bytes() {
    local s="$1" n unit
    n="${s%[KkMmGgTt]}"
    unit="${s#"$n"}"
    [[ $n =~ ^[0-9]+$ ]] || die "bad size '$s'"
    case "$unit" in
    K | k) echo $((n << 10)) ;;
    M | m | "") echo $((n << 20)) ;;
    G | g) echo $((n << 30)) ;;
    T | t) echo $((n << 40)) ;;
    esac
}

pv_load_board
