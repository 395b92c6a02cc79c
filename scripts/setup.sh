#!/usr/bin/env bash
# Install what parkvisor needs on a Debian 12 or 13 amd64 machine (run as root).
#
#   scripts/setup.sh          host tools: QEMU >= 10.0 (Debian 12: from
#                             bookworm-backports, added as a suite of the mirror
#                             the host's apt already uses; Debian 13: main), dtc,
#                             aarch64 binutils, cpio, shellcheck, Rust targets
#                             (and rustfmt/clippy: rust-toolchain.toml)
#   scripts/setup.sh linux    also the Debian arm64 guest kernel, busybox and
#                             kexec-tools, fetched through a private apt root
#                             (.cache/apt/<codename>: its own arm64-only sources,
#                             lists and status; the host's apt and dpkg
#                             architectures stay untouched) and cached under
#                             .cache/linux; what building the guest module needs
#                             (the aarch64 cross gcc and libc and linux-kbuild
#                             from the host's apt; a host without kbuild 6.1
#                             gets Debian 12's amd64 package in .cache/linux/
#                             kbuild; the guest kernel's own headers
#                             under .cache/linux/headers); and the test initramfs
#                             with that module (guest-tests/linux/build-initramfs.sh;
#                             Debian 13: the module is built in a trixie root,
#                             .cache/buildroot-trixie, debootstrapped once)
#   scripts/setup.sh module   the same as linux
#   --debian N                the guest's Debian release: 12 (bookworm, kernel
#                             6.1, default) or 13 (trixie, kernel 6.12, cached
#                             under .cache/linux-trixie)
#
# Idempotent and silent when everything is already there.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

want_linux=0 want_module=0
while [[ $# -gt 0 ]]; do
    case "$1" in
    base) shift ;;
    linux | module) want_linux=1 want_module=1; shift ;;
    --debian) need_value "$1" "$#"; pv_set_debian "$2"; shift 2 ;;
    -h | --help)
        sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument '$1' (expected: base, linux, module, --debian N)" ;;
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

# --- the host's apt sources -------------------------------------------------

# Every enabled "deb" source of the host's apt, one "URI SUITE SIGNED-BY" line
# per URI and suite (SIGNED-BY "-" when the source names no key file): deb822
# *.sources files and one-line *.list files.
host_apt_sources() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        awk '
            function flush(  i, j) {
                if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no")
                    for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
                        print u[i], s[j], (sb ~ /^\// ? sb : "-")
                types = ""; enabled = ""; sb = ""; nu = 0; ns = 0
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[A-Za-z-]+:/ {
                key = tolower($1); sub(/:$/, "", key)
                val = $0; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
                if (key == "types") types = val
                else if (key == "enabled") enabled = tolower(val)
                else if (key == "signed-by") sb = val
                else if (key == "uris") nu = split(val, u, /[ \t]+/)
                else if (key == "suites") ns = split(val, s, /[ \t]+/)
            }
            END { flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        # deb [opt=value ...] URI SUITE COMPONENT...
        awk '$1 == "deb" {
            sb = "-"; i = 2
            if ($2 ~ /^\[/) {
                for (; i <= NF; i++) {
                    t = $i; sub(/^\[/, "", t); last = sub(/\]$/, "", t)
                    if (t ~ /^signed-by=\//) { sb = t; sub(/^signed-by=/, "", sb) }
                    if (last) { i++; break }
                }
            }
            if (i + 1 <= NF) print $i, $(i + 1), sb
        }' "$f"
    done
}

# --- QEMU >= PV_QEMU_MIN ------------------------------------------------------
# Debian 12's own QEMU is 7.2: add bookworm-backports as another suite of the
# mirror the host already uses for bookworm (its URI and key read from the
# host's sources), unless some source has that suite already.
ensure_backports() {
    local code=$1 uri="" sb="" u s k
    while read -r u s k; do
        [[ $s == "$code-backports" ]] && return 0
        [[ -z $uri && $s == "$code" ]] && uri=$u sb=$k
    done < <(host_apt_sources)
    [[ -n $uri ]] || die "no '$code' source in the host's apt sources: cannot derive the mirror for $code-backports"
    local f=/etc/apt/sources.list.d/parkvisor-backports.sources
    note "adding $code-backports ($uri) to the host's apt: $f"
    {
        echo "# Added by parkvisor's scripts/setup.sh for QEMU >= $PV_QEMU_MIN (qemu-system-arm only)."
        echo "Types: deb"
        echo "URIs: $uri"
        echo "Suites: $code-backports"
        echo "Components: main"
        [[ $sb == - ]] || echo "Signed-By: $sb"
    } >"$f"
    apt_updated=0
}

ensure_qemu() {
    local v
    v=$(pv_qemu_version "$QEMU_BIN")
    if [[ -n $v ]] && pv_version_ge "$v" "$PV_QEMU_MIN"; then
        return 0
    fi
    as_root "installing QEMU >= $PV_QEMU_MIN (found: ${v:-none})"
    local code target=()
    code=$(pv_host_codename)
    case "$code" in
    bookworm)
        ensure_backports "$code"
        # -t for this one install: qemu-system-arm and what it needs at the
        # versions it needs; nothing else comes from backports.
        target=(-t "$code-backports")
        ;;
    *) ;; # Debian 13 and later: QEMU 10 is in the main archive.
    esac
    apt_update
    note "apt-get install ${target[*]} qemu-system-arm (QEMU ${v:-none} -> >= $PV_QEMU_MIN)"
    out=$(DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq \
        --no-install-recommends "${target[@]}" qemu-system-arm 2>&1) || {
        echo "$out" >&2
        die "apt-get install qemu-system-arm failed"
    }
    hash -r
    v=$(pv_qemu_version "$QEMU_BIN")
    pv_version_ge "${v:-0}" "$PV_QEMU_MIN" ||
        die "after installing qemu-system-arm, $QEMU_BIN is QEMU '${v:-none}', not >= $PV_QEMU_MIN (host '$code')"
    note "QEMU $v"
}
ensure_qemu

# --- host packages ----------------------------------------------------------
# command it provides -> Debian package
declare -A host_pkgs=(
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
    host_pkgs[/usr/aarch64-linux-gnu/lib/libc.a]=libc6-dev-arm64-cross
    # The guest kernel's kbuild, from the host's apt when the host is the
    # guest's Debian release (Debian 12: linux-kbuild-6.1). Any other pairing
    # builds modules in a build root of the guest's release (below).
    if pv_host_builds_modules "$PV_DEBIAN"; then
        host_pkgs[/usr/lib/linux-kbuild-6.1/scripts/basic/fixdep]=linux-kbuild-6.1
    fi
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

# --- the private apt root for the guest's arm64 packages ---------------------
# .cache/apt/<codename>: an apt configuration of its own (APT_CONFIG) with
# arm64 as its only architecture, sources for Debian <codename> on the mirrors
# the host's apt uses (<host>, <host>-updates and <host>-security become
# <codename>, -updates, -security; the host's key files), its own lists, an
# empty dpkg status and its own cache. It only resolves and downloads: the
# host's sources, lists and dpkg architectures stay as they were, and it needs
# no root.
code=$(pv_debian_codename "$PV_DEBIAN")
gapt="$PV_CACHE/apt/$code" garch=arm64
gapt_updated=0
# guest_apt_init: the private apt root for the guest release's arm64 packages.
guest_apt_init() {
    local host_code src="" u s k suffix
    host_code=$(pv_host_codename)
    [[ -n $host_code ]] || die "cannot read the host's codename from /etc/os-release"
    while read -r u s k; do
        case "$s" in
        "$host_code") suffix="" ;;
        "$host_code-updates") suffix=-updates ;;
        "$host_code-security") suffix=-security ;;
        *) continue ;;
        esac
        src+="Types: deb"$'\n'"URIs: $u"$'\n'"Suites: $code$suffix"$'\n'
        src+="Components: main"$'\n'"Architectures: $garch"$'\n'
        [[ $k == - ]] || src+="Signed-By: $k"$'\n'
        src+=$'\n'
    done < <(host_apt_sources | sort -u)
    [[ -n $src ]] || die "no '$host_code' source in the host's apt sources: cannot derive a mirror for Debian $code"
    mkdir -p "$gapt"/{lists/partial,cache/archives/partial,sources.list.d,preferences.d}
    [[ -f $gapt/status ]] || : >"$gapt/status"
    : >"$gapt/sources.list"
    local f="$gapt/sources.list.d/debian.sources"
    src=$(printf '%s' "$src") # without the trailing blank line, as $(cat) reads it back
    if [[ ! -f $f || $(cat "$f") != "$src" ]]; then
        echo "$src" >"$f"
        # New sources: the old lists no longer describe them.
        rm -f "$gapt"/lists/*Packages* "$gapt"/lists/*Release*
    fi
    cat >"$gapt/apt.conf" <<EOF
// Written by scripts/setup.sh: Debian $code $garch packages for the guest.
APT::Architecture "$garch";
APT::Architectures { "$garch"; };
Dir::Etc::sourcelist "$gapt/sources.list";
Dir::Etc::sourceparts "$gapt/sources.list.d/";
Dir::Etc::preferences "$gapt/preferences";
Dir::Etc::preferencesparts "$gapt/preferences.d/";
Dir::State::lists "$gapt/lists/";
Dir::State::status "$gapt/status";
Dir::State::extended_states "$gapt/extended_states";
Dir::Cache "$gapt/cache/";
Dir::Cache::archives "$gapt/cache/archives/";
APT::Sandbox::User "root";
Acquire::Languages "none";
EOF
}
gapt_get() { APT_CONFIG="$gapt/apt.conf" apt-get -q "$@"; }
gapt_cache() { APT_CONFIG="$gapt/apt.conf" apt-cache "$@"; }
gapt_update() {
    if ((gapt_updated == 0)); then
        note "apt-get update (private root $gapt: Debian $code $garch)"
        gapt_get update -qq >/dev/null || die "apt-get update of $gapt failed"
        gapt_updated=1
    fi
}
# apt-get download into DIR; as root apt says _apt cannot write there (harmless).
gapt_download() {
    local dir=$1
    shift
    (cd "$dir" && gapt_get download -qq "$@" 2>&1 | grep -v 'unsandboxed' >&2 || true)
}

# --- Debian arm64 guest ingredients -----------------------------------------
# Debian 12's .debs stay in .cache/debs (the layout before releases were
# selectable); any other release's go to .cache/linux-<codename>/debs.
if [[ $PV_DEBIAN == 12 ]]; then debs="$PV_CACHE/debs"; else debs="$PV_LINUX/debs"; fi
sysroot="$PV_LINUX/sysroot"
ready="$PV_LINUX/READY"

kpkg="" pkgs=()
fetch_linux() {
    guest_apt_init
    gapt_cache show linux-image-arm64 >/dev/null 2>&1 || gapt_update
    # Package lists older than the mirror name files that are gone: on a failed
    # download, update once and resolve again.
    if ! resolve_and_download; then
        ((gapt_updated)) && die "apt-get download failed"
        note "download failed; refreshing the package lists"
        gapt_update
        resolve_and_download || die "apt-get download failed"
    fi
    extract_linux
}

# Sets kpkg and pkgs; downloads what $debs lacks. Fails if a download did.
resolve_and_download() {
    # The kernel package behind the linux-image-arm64 metapackage (never hard-coded).
    kpkg=$(gapt_cache depends linux-image-arm64 |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-arm64\)\(:arm64\)\{0,1\}$/\1/p' | head -n1)
    [[ -n $kpkg ]] || die "cannot resolve the kernel package from 'apt-cache depends linux-image-arm64' (Debian $code)"

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
        for dep in $(gapt_cache depends --no-recommends --no-suggests --no-conflicts \
            --no-breaks --no-replaces --no-enhances "${level[@]}" 2>/dev/null |
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
        compgen -G "$debs/${p}_*_arm64.deb" >/dev/null || need+=("$p")
    done
    if ((${#need[@]})); then
        note "downloading ${need[*]} (Debian $code arm64; the kernel is ~60 MB)"
        gapt_download "$debs" "${need[@]}"
        for p in "${need[@]}"; do
            compgen -G "$debs/${p}_*_arm64.deb" >/dev/null || return 1
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
    # Debian 12 ships them in /bin and /sbin, Debian 13 in /usr/bin and /usr/sbin.
    [[ -x $sysroot/bin/busybox || -x $sysroot/usr/bin/busybox ]] || die "busybox-static did not provide busybox"
    [[ -x $sysroot/sbin/kexec || -x $sysroot/usr/sbin/kexec ]] || die "kexec-tools did not provide kexec"
    {
        echo "kernel=$kpkg $(basename "$kdeb")"
        for p in "${pkgs[@]}"; do echo "pkg=$(basename "$debs/${p}"_*_arm64.deb)"; done
    } >"$ready"
    note "guest kernel (Debian $code): $(basename "$img") ($((($(stat -c %s "$img") + 1048575) >> 20)) MiB)"
}

[[ -f $ready && -f $PV_LINUX/Image ]] || fetch_linux
# Boards without a QEMU-made device tree (raspi4b): their firmware DTB from
# this kernel's package, with their nodes disabled (see pv_board_dtb).
for board_env in "$PV_ROOT"/boards/*/board.env; do
    grep -q '^DTB_FROM_KERNEL=' "$board_env" || continue
    board_dir=${board_env%/board.env}
    (export PV_BOARD=${board_dir##*/} && pv_load_board && pv_board_dtb >/dev/null)
done

# --- headers of the guest kernel, for out-of-tree modules ---------------------
# linux-headers-<ver>-arm64 (Makefile, .config, Module.symvers, arch headers)
# and linux-headers-<abi>-common (the generic tree), for exactly the kernel in
# READY (resolved above from linux-image-arm64). Debian's packages assume they
# live in /usr/src with kbuild in /usr/lib: two paths are repointed.
headers_dir="$PV_LINUX/headers"
fetch_headers() {
    local kver hpkg cpkg deb
    kver=$(pv_kernel_release)
    [[ -n $kver ]] || die "no kernel version in $ready"
    hpkg="linux-headers-$kver"
    cpkg="linux-headers-${kver%-arm64}-common"
    mkdir -p "$debs"
    local -a need=()
    compgen -G "$debs/${hpkg}_*_arm64.deb" >/dev/null || need+=("$hpkg")
    compgen -G "$debs/${cpkg}_*_all.deb" >/dev/null || need+=("$cpkg")
    if ((${#need[@]})); then
        guest_apt_init
        gapt_cache show "$hpkg" >/dev/null 2>&1 || gapt_update
        note "downloading ${need[*]} (~12 MB)"
        gapt_download "$debs" "${need[@]}"
        compgen -G "$debs/${hpkg}_*_arm64.deb" >/dev/null || die "apt-get download $hpkg failed"
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
    echo "$kver" >"$headers_dir/VERSION"
}
# The arm64 Makefile includes the common tree by absolute path: /usr/src/...
# as packaged, or wherever this cache was when it was last repointed (a moved
# or shared checkout). Point it at this cache's copy on every run.
repoint_headers() {
    local kver=$1 cpkg hdir cdir series l
    cpkg="linux-headers-${kver%-arm64}-common"
    hdir="$headers_dir/usr/src/linux-headers-$kver" cdir="$headers_dir/usr/src/$cpkg"
    # scripts/ and tools/ are relative links into ../../lib/linux-kbuild-<series>:
    # point them at the host's kbuild.
    [[ $kver =~ ^([0-9]+\.[0-9]+) ]] || die "cannot read the kernel series from '$kver'"
    series=${BASH_REMATCH[1]}
    local kb="/usr/lib/linux-kbuild-$series"
    for l in "$hdir"/{scripts,tools} "$cdir"/{scripts,tools}; do
        if [[ -L $l && $(readlink "$l") != "$kb/$(basename "$l")" ]]; then
            ln -sfn "$kb/$(basename "$l")" "$l"
        fi
    done
    grep -q "^include $cdir/Makefile\$" "$hdir/Makefile" ||
        sed -i "s|^include [^ ]*/usr/src/$cpkg/Makefile\$|include $cdir/Makefile|" "$hdir/Makefile"
    grep -q "^include $cdir/Makefile\$" "$hdir/Makefile" ||
        die "cannot point $hdir/Makefile at $cdir"
}
if ((want_module)) && pv_host_builds_modules "$PV_DEBIAN"; then
    kver_ready=$(pv_kernel_release)
    [[ -f $headers_dir/VERSION && $(cat "$headers_dir/VERSION") == "$kver_ready" ]] || fetch_headers
    repoint_headers "$kver_ready"
fi

if ((want_module)) && ! pv_host_builds_modules "$PV_DEBIAN"; then
    # The test initramfs carries the guest module, which this kernel's gcc and
    # kbuild must build, and this host is another Debian release:
    # scripts/guest-module.sh builds it in a Debian $code
    # root (.cache/buildroot-$code), debootstrapped from the mirrors of the
    # private apt root above when missing.
    if ! command -v debootstrap >/dev/null; then
        as_root "installing debootstrap"
        apt_update
        note "apt-get install debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq \
            --no-install-recommends debootstrap >/dev/null || die "apt-get install debootstrap failed"
    fi
    [[ -f $PV_CACHE/buildroot-$code/.ready ]] || as_root "debootstrapping Debian $code"
fi
"$PV_ROOT/guest-tests/linux/build-initramfs.sh"
