#!/usr/bin/env bash
# Build the Linux test initramfs images from the ingredients that
# `scripts/setup.sh linux` cached under .cache/linux:
#
#   .cache/linux/initramfs-mini.cpio  busybox + /init: for the kexec'd and the
#                                     kdump capture kernel
#   .cache/linux/initramfs.cpio       the mini image plus kexec-tools with its
#                                     shared libraries, the kernel /Image and
#                                     /initrd-mini.cpio: the first kernel's initrd
#
# Both hold parkvisor's guest module and its test helper (/lib/parkvisor/*.ko,
# built by scripts/guest-module.sh) and /bin/vmcore-notes (a static checker of
# the capture kernel's /proc/vmcore, from vmcore-notes.c).
#
# Rebuilt only when an input (init, this script, the cached packages, the Image)
# changed; prints the image paths' status only when it rebuilds. --force rebuilds.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

force=0
[[ ${1:-} == --force ]] && force=1

here="$PV_ROOT/guest-tests/linux"
sysroot="$PV_LINUX/sysroot"
ready="$PV_LINUX/READY"
full="$PV_LINUX/initramfs.cpio"
mini="$PV_LINUX/initramfs-mini.cpio"
stampf="$PV_LINUX/initramfs.stamp"

[[ -f $ready && -f $PV_LINUX/Image ]] || die "guest ingredients missing: run 'scripts/setup.sh linux' first"
# Debian 12 ships busybox and kexec in /bin and /sbin, Debian 13 in /usr/bin and /usr/sbin.
busybox="$sysroot/bin/busybox" kexec="$sysroot/sbin/kexec"
[[ -e $busybox ]] || busybox="$sysroot/usr/bin/busybox"
[[ -e $kexec ]] || kexec="$sysroot/usr/sbin/kexec"
need_cmd cpio
need_cmd aarch64-linux-gnu-readelf "apt-get install binutils-aarch64-linux-gnu"

# One builder at a time (parallel run.sh calls).
exec 9>"$PV_LINUX/initramfs.lock"
flock 9

# The module (rebuilt only when its sources changed) goes into both images.
# Debian 12's builds with the host's tools; any other release's in a build root
# of that release (scripts/guest-module.sh RELEASE).
if [[ $PV_DEBIAN == 12 ]]; then
    ko=$("$PV_ROOT/scripts/guest-module.sh" --no-setup | tail -n1)
else
    rel=$(pv_kernel_release)
    [[ -n $rel ]] || die "$ready names no kernel"
    ko=$("$PV_ROOT/scripts/guest-module.sh" --no-setup "$rel" | tail -n1)
fi
need_cmd aarch64-linux-gnu-gcc "run 'scripts/setup.sh linux'"

stamp=$(
    cat "$here/init" "$0" "$ready" "$here/vmcore-notes.c"
    sha256sum "$(dirname "$ko")"/*.ko
    stat -c '%s %Y' "$PV_LINUX/Image"
)
stamp=$(sha256sum <<<"$stamp" | cut -d' ' -f1)
if ((!force)) && [[ -f $full && -f $mini && -f $stampf && $(cat "$stampf") == "$stamp" ]]; then
    exit 0
fi

note "building initramfs images"
work=$(mktemp -d "$PV_LINUX/initramfs.XXXXXX")
trap 'rm -rf "$work"' EXIT

mkcpio() { # mkcpio DIR OUT
    (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$2.tmp"
    mv "$2.tmp" "$2"
}

# --- mini: busybox + init ------------------------------------------------------
m="$work/mini"
mkdir -p "$m"/{bin,sbin,dev,proc,sys,tmp,lib,etc}
cp "$busybox" "$m/bin/busybox"
ln -s busybox "$m/bin/sh"
cp "$here/init" "$m/init"
mkdir -p "$m/lib/parkvisor"
cp "$(dirname "$ko")"/*.ko "$m/lib/parkvisor/"
aarch64-linux-gnu-gcc -static -O2 -Wall -o "$m/bin/vmcore-notes" "$here/vmcore-notes.c" ||
    die "building vmcore-notes failed (needs libc6-dev-arm64-cross: scripts/setup.sh linux)"
chmod 755 "$m/init"
# The kernel opens /dev/console before running /init; without the node (not
# root here) /init still redirects itself once devtmpfs is mounted.
mknod -m 600 "$m/dev/console" c 5 1 2>/dev/null || true
echo "parkvisor-guest" >"$m/etc/hostname"
mkcpio "$m" "$mini"

# --- full: + kexec, its libraries, the Image and the mini initrd --------------
f="$work/full"
cp -a "$m" "$f"
cp "$kexec" "$f/sbin/kexec"
cp "$PV_LINUX/Image" "$f/Image"
cp "$mini" "$f/initrd-mini.cpio"

# Shared library closure of kexec by DT_NEEDED, looked up in the sysroot.
libdirs=("$sysroot/lib/aarch64-linux-gnu" "$sysroot/usr/lib/aarch64-linux-gnu")
mkdir -p "$f/lib/aarch64-linux-gnu"
declare -A done_libs=()
queue=("$kexec")
while ((${#queue[@]})); do
    elf="${queue[0]}"
    queue=("${queue[@]:1}")
    for so in $(aarch64-linux-gnu-readelf -d "$elf" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        [[ -n ${done_libs[$so]:-} ]] && continue
        done_libs[$so]=1
        found=
        for d in "${libdirs[@]}"; do
            if [[ -e $d/$so ]]; then
                found="$d/$so"
                break
            fi
        done
        [[ -n $found ]] || die "kexec needs $so, not found in the cached packages ($sysroot)"
        cp -L "$found" "$f/lib/aarch64-linux-gnu/$so"
        queue+=("$found")
    done
done
interp=$(aarch64-linux-gnu-readelf -l "$kexec" | sed -n 's/.*interpreter: \(.*\)\]/\1/p')
[[ $interp == /lib/ld-linux-aarch64.so.1 ]] || die "unexpected ELF interpreter '$interp' for kexec"
ln -sf aarch64-linux-gnu/ld-linux-aarch64.so.1 "$f/lib/ld-linux-aarch64.so.1"
[[ -f $f/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1 ]] || die "dynamic loader missing from kexec's closure"
mkcpio "$f" "$full"

echo "$stamp" >"$stampf"
note "$(basename "$full") $(($(stat -c %s "$full") >> 20)) MiB, $(basename "$mini") $(($(stat -c %s "$mini") >> 10)) KiB; kexec libs: ${!done_libs[*]}"
