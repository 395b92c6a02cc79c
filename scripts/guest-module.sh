#!/usr/bin/env bash
# Build parkvisor's guest kernel module for the cached Debian arm64 kernel.
#
# Usage: scripts/guest-module.sh [--force] [--no-setup]
#
# Installs what is missing first (scripts/setup.sh module: the aarch64 cross
# compiler, linux-kbuild-6.1 and the kernel's own headers; --no-setup skips
# that, for callers that ran it already), rebuilds
# guest-tests/linux/module/ when a source changed, checks that the module's
# vermagic equals the kernel's, and prints the ABSOLUTE path of
# parkvisor_stop.ko as the LAST line of stdout. Everything else goes to stderr.
# The test module parkvisor_spin.ko lands next to it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

force=0 setup=1
for arg in "$@"; do
    case "$arg" in
    --force) force=1 ;;
    --no-setup) setup=0 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (see --help)" ;;
    esac
done

if ((setup)); then
    "$PV_ROOT/scripts/setup.sh" module >&2
fi
[[ -f $PV_LINUX/headers/VERSION ]] || die "no guest kernel headers: run 'scripts/setup.sh module'"
need_cmd aarch64-linux-gnu-gcc "run 'scripts/setup.sh module'"

src="$PV_ROOT/guest-tests/linux/module"
kver=$(cat "$PV_LINUX/headers/VERSION")
kdir="$PV_LINUX/headers/usr/src/linux-headers-$kver"
out="$PV_LINUX/module"
ko="$out/parkvisor_stop.ko"

# One build at a time, in a copy of the sources (the tree stays clean).
mkdir -p "$out"
exec 9>"$out.lock"
flock 9
stamp=$(cat "$src"/*.c "$src/Makefile" "$0"; echo "$kver")
stamp=$(sha256sum <<<"$stamp" | cut -d' ' -f1)
if ((force)) || [[ ! -f $ko || ! -f $out/stamp || $(cat "$out/stamp") != "$stamp" ]]; then
    note "building the guest module for $kver"
    rm -rf "$out/build"
    mkdir -p "$out/build"
    cp "$src"/*.c "$src/Makefile" "$out/build/"
    make -s -C "$kdir" M="$out/build" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- modules >&2 ||
        die "module build failed"
    cp "$out/build/"*.ko "$out/"
    echo "$stamp" >"$out/stamp"
fi
# The loader refuses a module whose vermagic differs from the kernel's.
want="$kver SMP mod_unload modversions aarch64"
got=$(aarch64-linux-gnu-objcopy -O binary --only-section=.modinfo "$ko" /dev/stdout | tr '\0' '\n' | sed -n 's/^vermagic=//p')
[[ $got == "$want" ]] || die "vermagic '$got' is not the kernel's '$want'"
echo "$ko"
