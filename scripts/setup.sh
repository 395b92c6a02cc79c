#!/usr/bin/env bash
# Install what parkvisor needs on a Debian 12 amd64 machine (run as root).
#
#   scripts/setup.sh          host tools: QEMU, dtc, aarch64 binutils, cpio, shellcheck,
#                             Rust targets (and rustfmt/clippy: rust-toolchain.toml)
#   scripts/setup.sh linux    also the Debian arm64 guest kernel, busybox and
#                             kexec-tools, cached under .cache/linux; what
#                             building the guest module needs (the aarch64
#                             cross gcc and libc, linux-kbuild-6.1, the guest
#                             kernel's own headers under .cache/linux/headers);
#                             and the test initramfs with that module
#                             (guest-tests/linux/build-initramfs.sh)
#   scripts/setup.sh module   the same as linux
#
# Idempotent and silent when everything is already there.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

want_linux=0 want_module=0
for arg in "$@"; do
    case "$arg" in
    base) ;;
    linux | module) want_linux=1 want_module=1 ;;
    -h | --help)
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument '$arg' (expected: base, linux, module)" ;;
    esac
done

# One setup at a time (parallel run.sh calls share .cache/).
mkdir -p "$PV_CACHE"
exec 9>"$PV_CACHE/setup.lock"
flock 9

# Wait for a dpkg lock held by someone else instead of failing at once.
apt_opts=(-o DPkg::Lock::Timeout=300)
apt_updated=0
apt_update() {
    if ((apt_updated == 0)); then
        note "apt-get update"
        apt-get "${apt_opts[@]}" update -qq >/dev/null || die "apt-get update failed"
        apt_updated=1
    fi
}

as_root() {
    [[ $(id -u) == 0 ]] || die "$* needs root (run setup.sh as root, or install it yourself)"
}

# --- host packages ----------------------------------------------------------
# command it provides -> Debian package
declare -A host_pkgs=(
    [qemu-system-aarch64]=qemu-system-arm
    [dtc]=device-tree-compiler
    [aarch64-linux-gnu-readelf]=binutils-aarch64-linux-gnu
    [cpio]=cpio
    [timeout]=coreutils
    [dpkg-deb]=dpkg
    [shellcheck]=shellcheck
)
if ((want_module)); then
    # Cross-building a module for the guest kernel, and the static vmcore checker.
    host_pkgs[aarch64-linux-gnu-gcc]=gcc-aarch64-linux-gnu
    host_pkgs[/usr/lib/linux-kbuild-6.1/scripts/basic/fixdep]=linux-kbuild-6.1
    host_pkgs[/usr/aarch64-linux-gnu/lib/libc.a]=libc6-dev-arm64-cross
fi
missing=()
for cmd in "${!host_pkgs[@]}"; do
    if [[ $cmd == /* ]]; then
        [[ -e $cmd ]] || missing+=("${host_pkgs[$cmd]}")
    else
        command -v "$cmd" >/dev/null 2>&1 || missing+=("${host_pkgs[$cmd]}")
    fi
done
if ((${#missing[@]})); then
    as_root "installing ${missing[*]}"
    apt_update
    note "apt-get install ${missing[*]}"
    out=$(DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq \
        --no-install-recommends "${missing[@]}" 2>&1) || {
        echo "$out" >&2
        die "apt-get install ${missing[*]} failed"
    }
fi

# --- Rust targets -------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
    [[ -x $HOME/.cargo/bin/cargo ]] && export PATH="$HOME/.cargo/bin:$PATH"
fi
need_cmd cargo "install Rust with rustup first"
if command -v rustup >/dev/null 2>&1; then
    # The targets rust-toolchain.toml names (cargo would also fetch them lazily).
    targets=$(sed -n 's/^targets *= *\[\(.*\)\]/\1/p' "$PV_ROOT/rust-toolchain.toml" | tr -d '"' | tr ',' ' ')
    installed=$(cd "$PV_ROOT" && rustup target list --installed 2>/dev/null)
    for t in $targets; do
        if ! grep -qx "$t" <<<"$installed"; then
            note "rustup target add $t"
            (cd "$PV_ROOT" && rustup target add "$t" >/dev/null 2>&1) || die "rustup target add $t failed"
        fi
    done
fi

((want_linux)) || exit 0

# --- Debian arm64 guest ingredients -----------------------------------------
debs="$PV_CACHE/debs"
sysroot="$PV_LINUX/sysroot"
ready="$PV_LINUX/READY"

kpkg="" pkgs=()
fetch_linux() {
    as_root "fetching the Debian arm64 guest packages"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        note "dpkg --add-architecture arm64"
        dpkg --add-architecture arm64
        # The lists fetched for the host packages have no arm64 entries yet.
        apt_updated=0
        apt_update
    fi
    if ! apt-cache show linux-image-arm64:arm64 >/dev/null 2>&1; then
        apt_update
    fi
    # Package lists older than the mirror name files that are gone: on a failed
    # download, update once and resolve again.
    if ! resolve_and_download; then
        ((apt_updated)) && die "apt-get download failed"
        note "download failed; refreshing the package lists"
        apt_update
        resolve_and_download || die "apt-get download failed"
    fi
    extract_linux
}

# Sets kpkg and pkgs; downloads what .cache/debs lacks. Fails if a download did.
resolve_and_download() {
    # The kernel package behind the linux-image-arm64 metapackage (never hard-coded).
    kpkg=$(apt-cache depends linux-image-arm64:arm64 |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-arm64\)\(:arm64\)\{0,1\}$/\1/p' | head -n1)
    [[ -n $kpkg ]] || die "cannot resolve the kernel package from 'apt-cache depends linux-image-arm64:arm64'"

    # kexec-tools plus the shared libraries it pulls in: follow Depends/Pre-Depends
    # through library packages only (skipping debconf and friends), one
    # apt-cache call per level (each call costs about a second).
    local -a level=(kexec-tools libc6)
    local -A seen=()
    pkgs=()
    while ((${#level[@]})); do
        local p dep next=()
        for p in "${level[@]}"; do
            seen[$p]=1
            pkgs+=("$p")
        done
        for dep in $(apt-cache depends --no-recommends --no-suggests --no-conflicts \
            --no-breaks --no-replaces --no-enhances "${level[@]/%/:arm64}" 2>/dev/null |
            sed -n 's/^ *|\{0,1\}\(Pre\)\{0,1\}Depends: \([^<][^ ]*\)$/\2/p' | sed 's/:arm64$//' | sort -u); do
            case "$dep" in
            lib* | zlib*) [[ -n ${seen[$dep]:-} ]] || next+=("$dep") ;;
            esac
        done
        level=("${next[@]}")
    done
    pkgs+=(busybox-static)

    mkdir -p "$debs"
    local -a need=()
    for p in "$kpkg" "${pkgs[@]}"; do
        compgen -G "$debs/${p}_*_arm64.deb" >/dev/null || need+=("$p:arm64")
    done
    if ((${#need[@]})); then
        note "downloading ${need[*]} (the kernel is ~60 MB)"
        # As root, apt warns that _apt cannot write here; that is harmless.
        (cd "$debs" && apt-get download -qq "${need[@]}" 2>&1 | grep -v 'unsandboxed' >&2 || true)
        for p in "${need[@]}"; do
            compgen -G "$debs/${p%:arm64}_*_arm64.deb" >/dev/null || return 1
        done
    fi
}

extract_linux() {
    local p
    note "extracting into $PV_LINUX"
    rm -rf "$sysroot" "$PV_LINUX/kernel"
    mkdir -p "$sysroot" "$PV_LINUX/kernel"
    local deb
    for p in "${pkgs[@]}"; do
        for deb in "$debs/${p}"_*_arm64.deb; do
            dpkg-deb -x "$deb" "$sysroot"
        done
    done
    # Only the Image and its config: tar stops reading once it has both (they
    # come first), which skips decompressing ~400 MB of modules; dpkg-deb then
    # complains about the closed pipe, which is expected.
    local kdeb kver="${kpkg#linux-image-}"
    kdeb=$(ls "$debs/${kpkg}"_*_arm64.deb | tail -n1)
    dpkg-deb --fsys-tarfile "$kdeb" 2>/dev/null |
        tar -x -C "$PV_LINUX/kernel" --occurrence=1 "./boot/vmlinuz-$kver" "./boot/config-$kver" || true
    local img="$PV_LINUX/kernel/boot/vmlinuz-$kver"
    [[ -f $img ]] || die "no boot/vmlinuz-$kver in $kdeb"
    # Debian's arm64 vmlinuz is an uncompressed Image ("ARM\x64" magic at 0x38).
    [[ $(dd if="$img" bs=1 skip=56 count=4 2>/dev/null | od -An -c | tr -d ' ') == 'ARMd' ]] ||
        die "$img is not an arm64 Image"
    cp "$img" "$PV_LINUX/Image"
    [[ -x $sysroot/bin/busybox ]] || die "busybox-static did not provide bin/busybox"
    [[ -x $sysroot/sbin/kexec ]] || die "kexec-tools did not provide sbin/kexec"
    {
        echo "kernel=$kpkg $(basename "$kdeb")"
        for p in "${pkgs[@]}"; do echo "pkg=$(basename "$debs/${p}"_*_arm64.deb)"; done
    } >"$ready"
    note "guest kernel: $(basename "$img") ($((($(stat -c %s "$img") + 1048575) >> 20)) MiB)"
}

[[ -f $ready && -f $PV_LINUX/Image ]] || fetch_linux

# --- headers of the guest kernel, for out-of-tree modules ---------------------
# linux-headers-<ver>-arm64 (Makefile, .config, Module.symvers, arch headers)
# and linux-headers-<abi>-common (the generic tree), for exactly the kernel in
# READY (resolved above from linux-image-arm64). Debian's packages assume they
# live in /usr/src with kbuild in /usr/lib: two paths are repointed.
headers_dir="$PV_LINUX/headers"
fetch_headers() {
    as_root "fetching the guest kernel headers"
    local kver hpkg cpkg deb
    kver=$(sed -n 's/^kernel=linux-image-\([^ ]*\) .*/\1/p' "$ready")
    [[ -n $kver ]] || die "no kernel version in $ready"
    hpkg="linux-headers-$kver"
    cpkg="linux-headers-${kver%-arm64}-common"
    mkdir -p "$debs"
    local -a need=()
    compgen -G "$debs/${hpkg}_*_arm64.deb" >/dev/null || need+=("$hpkg:arm64")
    compgen -G "$debs/${cpkg}_*_all.deb" >/dev/null || need+=("$cpkg")
    if ((${#need[@]})); then
        apt-cache show "$hpkg:arm64" >/dev/null 2>&1 || apt_update
        note "downloading ${need[*]} (~12 MB)"
        (cd "$debs" && apt-get download -qq "${need[@]}" 2>&1 | grep -v 'unsandboxed' >&2 || true)
        compgen -G "$debs/${hpkg}_*_arm64.deb" >/dev/null || die "apt-get download $hpkg:arm64 failed"
        compgen -G "$debs/${cpkg}_*_all.deb" >/dev/null || die "apt-get download $cpkg failed"
    fi
    note "extracting the headers of $kver into $headers_dir"
    rm -rf "$headers_dir"
    mkdir -p "$headers_dir"
    for deb in "$debs/${hpkg}"_*_arm64.deb "$debs/${cpkg}"_*_all.deb; do
        dpkg-deb -x "$deb" "$headers_dir"
    done
    [[ -f $headers_dir/usr/src/$hpkg/Makefile && -d $headers_dir/usr/src/$cpkg ]] ||
        die "unexpected layout in $hpkg / $cpkg"
    # scripts/ and tools/ are relative links into ../../lib/linux-kbuild-6.1.
    local l
    for l in "$headers_dir/usr/src/$hpkg"/{scripts,tools} "$headers_dir/usr/src/$cpkg"/{scripts,tools}; do
        if [[ -L $l ]]; then
            ln -sfn "/usr/lib/linux-kbuild-6.1/$(basename "$l")" "$l"
        fi
    done
    echo "$kver" >"$headers_dir/VERSION"
}
# The arm64 Makefile includes the common tree by absolute path: /usr/src/...
# as packaged, or wherever this cache was when it was last repointed (a moved
# or shared checkout). Point it at this cache's copy on every run.
repoint_headers() {
    local kver=$1 cpkg hdir cdir
    cpkg="linux-headers-${kver%-arm64}-common"
    hdir="$headers_dir/usr/src/linux-headers-$kver" cdir="$headers_dir/usr/src/$cpkg"
    grep -q "^include $cdir/Makefile\$" "$hdir/Makefile" ||
        sed -i "s|^include [^ ]*/usr/src/$cpkg/Makefile\$|include $cdir/Makefile|" "$hdir/Makefile"
    grep -q "^include $cdir/Makefile\$" "$hdir/Makefile" ||
        die "cannot point $hdir/Makefile at $cdir"
}
if ((want_module)); then
    kver_ready=$(sed -n 's/^kernel=linux-image-\([^ ]*\) .*/\1/p' "$ready")
    [[ -f $headers_dir/VERSION && $(cat "$headers_dir/VERSION") == "$kver_ready" ]] || fetch_headers
    repoint_headers "$kver_ready"
fi

"$PV_ROOT/guest-tests/linux/build-initramfs.sh"
