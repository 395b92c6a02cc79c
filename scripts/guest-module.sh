#!/usr/bin/env bash
# Build parkvisor's guest kernel module for the cached Debian arm64 kernel.
#
# Usage: scripts/guest-module.sh [--force] [--no-setup] [RELEASE]
#
# RELEASE (e.g. 6.12.117+deb13-arm64, 6.1.0-57-arm64): build for that Debian
# 12 or 13 arm64 kernel instead, in a Debian build root of that release (as
# also without RELEASE on a host that is not Debian 12)
# (debootstrap under .cache/buildroot-<codename>: its own cross compiler and
# linux-kbuild, the kernel's headers extracted at /usr/src as Debian means
# them); the modules land in .cache/linux/module-<RELEASE>/. Without it,
# unchanged:
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

force=0 setup=1 release=""
for arg in "$@"; do
    case "$arg" in
    --force) force=1 ;;
    --no-setup) setup=0 ;;
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown argument '$arg' (see --help)" ;;
    *) release=$arg ;;
    esac
done

src="$PV_ROOT/guest-tests/linux/module"

# A Debian build root for RELEASE: Debian 13 kernels (+deb13) need trixie's
# gcc-14 and kbuild, which a Debian 12 host does not have.
build_in_root() {
    local rel=$1 n code abi kbuild root out ko mirror want got
    case "$rel" in
    *+deb13-arm64) code=trixie n=13 ;;
    6.1.*-arm64) code=bookworm n=12 ;;
    *) die "release '$rel': expected a Debian 12 (6.1.*-arm64) or 13 (*+deb13-arm64) arm64 kernel" ;;
    esac
    abi=${rel%-arm64}
    root="$PV_CACHE/buildroot-$code"
    out="$PV_LINUX/module-$rel"
    ko="$out/parkvisor_stop.ko"
    # The mirrors of setup.sh's private apt root for this release (those the
    # host's apt uses): "URI SUITE" lines, the first one the release itself.
    local gsrc="$PV_CACHE/apt/$code/sources.list.d/debian.sources" suites
    [[ -f $gsrc ]] || die "no $gsrc: run 'scripts/setup.sh linux --debian $n' first"
    suites=$(awk '/^URIs:/ { u = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) print u, $i }' "$gsrc")
    mirror=$(awk -v c="$code" '$2 == c { print $1; exit }' <<<"$suites")
    [[ -n $mirror ]] || die "$gsrc has no '$code' suite"
    mkdir -p "$out"
    exec 9>"$root.lock"
    flock 9
    if [[ ! -f $root/.ready ]]; then
        need_cmd debootstrap "apt-get install debootstrap"
        note "debootstrap $code into $root"
        rm -rf "$root"
        debootstrap --variant=minbase \
            --include=gcc-aarch64-linux-gnu,make,libc6-dev-arm64-cross,bc,kmod,xz-utils \
            "$code" "$root" "$mirror" >&2 || die "debootstrap $code failed"
        awk '{ print "deb", $1, $2, "main" }' <<<"$suites" >"$root/etc/apt/sources.list"
        chroot "$root" dpkg --add-architecture arm64
        touch "$root/.ready"
    fi
    if [[ ! -d $root/usr/src/linux-headers-$rel ]]; then
        note "headers and kbuild for $rel in $root"
        chroot "$root" apt-get update -qq >&2 || die "apt-get update in $root failed"
        kbuild=linux-kbuild-$abi
        chroot "$root" apt-cache show "$kbuild" >/dev/null 2>&1 || kbuild=linux-kbuild-$(cut -d. -f1,2 <<<"$rel")
        chroot "$root" apt-get install -y -qq --no-install-recommends "$kbuild" >&2 ||
            die "installing $kbuild in $root failed"
        rm -rf "$root/tmp/headers" && mkdir -p "$root/tmp/headers"
        chroot "$root" sh -c "cd /tmp/headers && apt-get download -qq linux-headers-$rel:arm64 linux-headers-$abi-common" >&2 ||
            die "no headers for $rel in Debian $code"
        # Only usr/src: extracting a whole package at / would replace a
        # merged-/usr root's lib symlink with the package's lib/modules
        # directory (Debian 12's dpkg does), and the root would stop working.
        chroot "$root" sh -c 'for d in /tmp/headers/*.deb; do dpkg -x "$d" /tmp/headers/x; done &&
            cp -a /tmp/headers/x/usr/src/. /usr/src/' || die "extracting the headers failed"
    fi
    local stamp
    stamp=$(cat "$src"/*.[ch] "$src/Makefile" "$0"; echo "$rel")
    stamp=$(sha256sum <<<"$stamp" | cut -d' ' -f1)
    if ((force)) || [[ ! -f $ko || ! -f $out/stamp || $(cat "$out/stamp") != "$stamp" ]]; then
        note "building the guest module for $rel in $root"
        rm -rf "$root/build" && mkdir -p "$root/build"
        cp "$src"/*.[ch] "$src/Makefile" "$root/build/"
        chroot "$root" make -s -C "/usr/src/linux-headers-$rel" M=/build ARCH=arm64 \
            CROSS_COMPILE=aarch64-linux-gnu- modules >&2 || die "module build for $rel failed"
        cp "$root/build/"*.ko "$out/"
        echo "$stamp" >"$out/stamp"
    fi
    want="$rel SMP mod_unload modversions aarch64"
    got=$(aarch64-linux-gnu-objcopy -O binary --only-section=.modinfo "$ko" /dev/stdout |
        tr '\0' '\n' | sed -n 's/^vermagic=//p')
    [[ $got == "$want" ]] || die "vermagic '$got' is not the kernel's '$want'"
    echo "$ko"
}
if [[ -n $release ]]; then
    build_in_root "$release"
    exit 0
fi

if ((setup)); then
    "$PV_ROOT/scripts/setup.sh" module >&2
fi
if ! pv_host_builds_modules "$PV_DEBIAN"; then
    kver=$(pv_kernel_release)
    [[ -n $kver ]] || die "no guest kernel in $PV_LINUX/READY: run 'scripts/setup.sh module'"
    note "this host ($(pv_host_codename)) has no kbuild and gcc of $kver: building in a Debian build root"
    build_in_root "$kver"
    exit 0
fi
[[ -f $PV_LINUX/headers/VERSION ]] || die "no guest kernel headers: run 'scripts/setup.sh module'"
need_cmd aarch64-linux-gnu-gcc "run 'scripts/setup.sh module'"

kver=$(cat "$PV_LINUX/headers/VERSION")
kdir="$PV_LINUX/headers/usr/src/linux-headers-$kver"
out="$PV_LINUX/module"
ko="$out/parkvisor_stop.ko"

# One build at a time, in a copy of the sources (the tree stays clean).
mkdir -p "$out"
exec 9>"$out.lock"
flock 9
stamp=$(cat "$src"/*.[ch] "$src/Makefile" "$0"; echo "$kver")
stamp=$(sha256sum <<<"$stamp" | cut -d' ' -f1)
if ((force)) || [[ ! -f $ko || ! -f $out/stamp || $(cat "$out/stamp") != "$stamp" ]]; then
    note "building the guest module for $kver"
    rm -rf "$out/build"
    mkdir -p "$out/build"
    cp "$src"/*.[ch] "$src/Makefile" "$out/build/"
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
