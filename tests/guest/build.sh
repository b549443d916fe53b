#!/bin/sh
# tests/guest/build.sh CACHE_DIR [GUEST...] — builds attestfs's test guests from Debian packages,
# cached. GUEST: tiny, tiny-hvc0 (the default: both), debian (build-debian.sh: a bookworm systemd
# root file system; needs root and mmdebstrap), all.
#
#   CACHE_DIR/kernel/<abi>_<pkgversion>/     the unpacked kernel package (boot/, lib/modules/<abi>/, depmod run)
#   CACHE_DIR/kernel/vmlinuz                 -> <abi>_<pkgversion>/boot/vmlinuz-<abi>
#   CACHE_DIR/kernel/modules                 -> <abi>_<pkgversion>/lib/modules/<abi>
#   CACHE_DIR/kernel/vmlinux                 -> <abi>_<pkgversion>/boot/vmlinux-<abi> (extract-vmlinux: the ELF
#                                            kernel Firecracker and Cloud Hypervisor boot; <guest>/vmlinux links to it)
#   CACHE_DIR/kernel/env                     KERNEL_PACKAGE= KERNEL_VERSION= KERNEL_RELEASE= VMLINUZ= MODULES_DIR=
#   CACHE_DIR/tiny/{vmlinuz,initrd.gz,cmdline,stamp}        busybox initramfs, shells on virtserialports
#   CACHE_DIR/tiny-hvc0/{vmlinuz,initrd.gz,cmdline,stamp}   same, NixOS-style single shell on /dev/hvc0
#   CACHE_DIR/debian/{vmlinuz,initrd.gz,base.img,cmdline,stamp,run-debian-vm}   see build-debian.sh
#
# The kernel is the package that linux-image-amd64 depends on, fetched with `apt-get download` from
# the host's configured apt sources (never the host's /boot, never `uname -r`). busybox comes from the
# installed busybox-static package (downloaded the same way when it is not installed).
# A guest is rebuilt only when its stamp (hash of these scripts + package versions) changes.
set -eu

if [ $# -lt 1 ] || [ -z "$1" ]; then
	echo "usage: $0 CACHE_DIR [tiny|tiny-hvc0|debian|all]..." >&2
	exit 2
fi
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
CACHE=$(cd "$1" && pwd)
# virtio_mmio: Firecracker's devices. Debian builds it as a module without the command-line
# device list, so the guest finds them through ACPI (Firecracker 1.8 and later describe them there)
MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console
failover net_failover virtio_net virtio_blk virtio_rng button evdev virtio_mmio"
# loaded by /init only when the VM has a vsock device (Firecracker, Cloud Hypervisor)
VSOCK_MODULES="vmw_vsock_virtio_transport"
# the guest's vsock listener (machine/agent/vsock-listen.c), built by make
VSOCK_LISTEN=${ATTESTFS_VSOCK_LISTEN:-$HERE/../../build/agent/attestfs-vsock-listen}
if [ ! -x "$VSOCK_LISTEN" ]; then
	make -C "$HERE/../.." build/agent/attestfs-vsock-listen >&2
fi
VSOCK_LISTEN=$(cd "$(dirname "$VSOCK_LISTEN")" && pwd)/${VSOCK_LISTEN##*/}
export ATTESTFS_VSOCK_LISTEN="$VSOCK_LISTEN"
VARIANTS='' DEBIAN=''
shift
[ $# -gt 0 ] || set -- tiny tiny-hvc0
for g in "$@"; do
	case $g in
	tiny | tiny-hvc0) VARIANTS="$VARIANTS $g" ;;
	debian) DEBIAN=1 ;;
	all) VARIANTS="tiny tiny-hvc0" DEBIAN=1 ;;
	*)
		echo "$0: unknown guest '$g' (tiny, tiny-hvc0, debian, all)" >&2
		exit 2
		;;
	esac
done
# The guests need neither an LSM nor the memory controller, whose hooks on
# every open, fork and page cost a tiny guest's commands 5-15 % under TCG.
CMDLINE="console=ttyS0 quiet panic=-1 lsm=capability cgroup_disable=memory"

log() { echo "guest: $*"; }
die() {
	echo "guest: error: $*" >&2
	exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# One build at a time per cache directory.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$CACHE/.lock"
	flock 9
fi

TMP=
cleanup() { [ -z "$TMP" ] || rm -rf --one-file-system "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
TMP=$(mktemp -d "$CACHE/.tmp.XXXXXX")

# Downloads PKG=VERSION into $TMP/dl (apt-get update once if the lists are missing or stale).
apt_download() {
	mkdir -p "$TMP/dl"
	# apt drops privileges to _apt for downloads; let it write there (avoids a warning).
	if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$TMP/dl"; fi
	if ! (cd "$TMP/dl" && apt-get download -q "$1" >/dev/null 2>"$TMP/apt.err"); then
		if [ "$(id -u)" = 0 ]; then
			log "apt-get download $1 failed; running apt-get update"
			apt-get update -qq >/dev/null || true
			(cd "$TMP/dl" && apt-get download -q "$1" >/dev/null 2>"$TMP/apt.err") ||
				{ cat "$TMP/apt.err" >&2; return 1; }
		else
			cat "$TMP/apt.err" >&2
			return 1
		fi
	fi
}

# Field $2 of package $1's candidate version (apt-cache show), empty if unknown.
apt_field() {
	apt-cache show --no-all-versions "$1" 2>/dev/null | sed -n "s/^$2: *//p" | head -n 1
}

# ---------------------------------------------------------------- 1. kernel
t0=$(now)
# Offline fallback: the kernel published by an earlier run.
use_cached_kernel() { # REASON
	[ -f "$CACHE/kernel/env" ] || die "$1, and no kernel is cached"
	# shellcheck source=/dev/null
	. "$CACHE/kernel/env"
	KPKG=$KERNEL_PACKAGE KVERSION=$KERNEL_VERSION KREL=$KERNEL_RELEASE
	KDIR="$CACHE/kernel/${KPKG#linux-image-}_$KVERSION"
	[ -e "$KDIR/.complete" ] || die "$1, and the cached kernel is incomplete"
	log "kernel: $1; using the cached $KPKG $KVERSION ($KREL)"
}
fetch_kernel() { # unpacks $KPKG=$KVERSION into $KDIR
	apt_download "$KPKG=$KVERSION" || return 1
	deb=$(ls "$TMP"/dl/*.deb)
	dpkg-deb -x "$deb" "$TMP/kroot"
	rel=$(ls "$TMP/kroot/lib/modules")
	if [ -z "$rel" ] || [ ! -f "$TMP/kroot/boot/vmlinuz-$rel" ]; then
		die "$deb has no vmlinuz/modules"
	fi
	depmod -b "$TMP/kroot" "$rel" # the package ships no modules.dep (its postinst runs depmod)
	echo "$rel" >"$TMP/kroot/.release"
	rm -rf "$KDIR"
	mv "$TMP/kroot" "$KDIR"
	: >"$KDIR/.complete"
	rm -rf "$TMP/dl"
}

KPKG='' KVERSION=''
dep=$(apt_field linux-image-amd64 Depends)
if [ -z "$dep" ] && [ "$(id -u)" = 0 ] && [ ! -f "$CACHE/kernel/env" ]; then
	log "apt-cache knows no linux-image-amd64; running apt-get update"
	apt-get update -qq >/dev/null || true
	dep=$(apt_field linux-image-amd64 Depends)
fi
if [ -n "$dep" ]; then
	# "linux-image-6.1.0-56-amd64 (= 6.1.192-2)" -> the first linux-image-* alternative
	first=$(echo "$dep" | tr ',' '\n' | tr '|' '\n' | grep '^ *linux-image-' | head -n 1)
	KPKG=$(echo "$first" | sed -n 's/^ *\(linux-image-[^ (]*\).*/\1/p')
	KVERSION=$(echo "$first" | sed -n 's/.*(= *\([^ )]*\)).*/\1/p')
	[ -z "$KPKG" ] || [ -n "$KVERSION" ] || KVERSION=$(apt_field "$KPKG" Version)
fi
if [ -z "$KPKG" ] || [ -z "$KVERSION" ]; then
	use_cached_kernel "apt-cache knows no linux-image-amd64"
else
	KDIR_NAME="${KPKG#linux-image-}_$KVERSION"
	KDIR="$CACHE/kernel/$KDIR_NAME"
	mkdir -p "$CACHE/kernel"
	if [ -e "$KDIR/.complete" ]; then
		kstate="cached"
	elif fetch_kernel; then
		kstate="downloaded and unpacked"
	else
		kstate=''
		use_cached_kernel "cannot download $KPKG=$KVERSION"
	fi
	if [ -n "$kstate" ]; then
		KREL=$(cat "$KDIR/.release")
		printf '%s\n' "KERNEL_PACKAGE=$KPKG" "KERNEL_VERSION=$KVERSION" "KERNEL_RELEASE=$KREL" \
			"VMLINUZ=$KDIR/boot/vmlinuz-$KREL" "MODULES_DIR=$KDIR/lib/modules/$KREL" >"$TMP/env"
		cmp -s "$TMP/env" "$CACHE/kernel/env" || mv "$TMP/env" "$CACHE/kernel/env"
		for l in "vmlinuz:$KDIR_NAME/boot/vmlinuz-$KREL" "modules:$KDIR_NAME/lib/modules/$KREL"; do
			if [ "$(readlink "$CACHE/kernel/${l%%:*}" 2>/dev/null || true)" != "${l#*:}" ]; then
				ln -sfn "${l#*:}" "$CACHE/kernel/.${l%%:*}.new"
				mv -T "$CACHE/kernel/.${l%%:*}.new" "$CACHE/kernel/${l%%:*}"
			fi
		done
		# Drop the kernels of earlier package versions.
		for d in "$CACHE"/kernel/*_*; do
			if [ -d "$d" ] && [ "$d" != "$KDIR" ]; then
				rm -rf "$d"
				log "removed old kernel ${d##*/}"
			fi
		done
		log "kernel $KPKG $KVERSION ($KREL): $kstate ($(since "$t0"))"
	fi
fi
MODDIR="$KDIR/lib/modules/$KREL"

# ---------------------------------------------------------------- 2. busybox
t0=$(now)
BB=
BBVERSION=$(dpkg-query -W -f='${db:Status-Status} ${Version}' busybox-static 2>/dev/null |
	sed -n 's/^installed //p')
if [ -n "$BBVERSION" ]; then
	BB=$(dpkg-query -L busybox-static | grep '/bin/busybox$' | head -n 1)
	bbstate="installed $BB"
fi
if [ -z "$BB" ] || [ ! -x "$BB" ]; then
	BBVERSION=$(apt_field busybox-static Version)
	[ -n "$BBVERSION" ] || die "busybox-static is neither installed nor known to apt-cache"
	BB="$CACHE/busybox/$BBVERSION/bin/busybox"
	bbstate="cached $BB"
	if [ ! -x "$BB" ]; then
		bbstate="downloaded"
		apt_download "busybox-static=$BBVERSION" || die "cannot download busybox-static"
		dpkg-deb -x "$(ls "$TMP"/dl/busybox-static_*.deb)" "$TMP/bb"
		rm -rf "$CACHE/busybox"
		mkdir -p "$CACHE/busybox"
		mv "$TMP/bb" "$CACHE/busybox/$BBVERSION"
		rm -rf "$TMP/dl"
	fi
fi
log "busybox-static $BBVERSION: $bbstate ($(since "$t0"))"

# ---------------------------------------------------------------- 3. guests
# Module load order: the dependency closure, deps first, each module once.
modorder() { # [MODULE...]: $MODULES by default
	: >"$TMP/deps"
	# shellcheck disable=SC2086 # a list of module names
	[ $# -gt 0 ] || set -- $MODULES
	for m in "$@"; do
		modprobe -d "$KDIR" -S "$KREL" --show-depends "$m" >>"$TMP/deps" ||
			die "module $m not found in $MODDIR"
	done
	awk '$1 == "insmod" && !seen[$2]++ { print $2 }' "$TMP/deps"
}

HASH=$({
	cat "$HERE/build.sh" "$HERE/init" "$HERE/backdoor" "$HERE/backdoor-hvc0" \
		"$HERE/backdoor-vsock" "$VSOCK_LISTEN"
	echo "$KPKG $KVERSION $KREL busybox-static $BBVERSION $MODULES $VSOCK_MODULES $CMDLINE"
} | sha256sum | cut -d' ' -f1)

build_initrd() { # VARIANT OUT
	st="$TMP/root-$1"
	rm -rf "$st"
	mkdir -p "$st"
	(cd "$st" && mkdir -p bin sbin usr/bin usr/sbin dev proc sys tmp run root etc/attestfs \
		"lib/modules/$KREL")
	cp "$BB" "$st/bin/busybox"
	chmod 0755 "$st/bin/busybox"
	# Applet links. Never link "busybox" itself: that would replace the binary with a self-link.
	"$st/bin/busybox" --list-full | while read -r a; do
		case $a in bin/busybox | linuxrc | '') continue ;; esac
		[ -e "$st/$a" ] || ln -s /bin/busybox "$st/$a"
	done
	for a in bin/sh sbin/init sbin/poweroff sbin/reboot; do
		[ -L "$st/$a" ] || die "busybox lacks $a"
	done
	modorder >"$TMP/modorder"
	[ -s "$TMP/modorder" ] || die "no modules"
	: >"$st/etc/attestfs/modules"
	while read -r ko; do
		rel=${ko#"$MODDIR"/}
		mkdir -p "$st/lib/modules/$KREL/$(dirname "$rel")"
		cp "$ko" "$st/lib/modules/$KREL/$rel"
		echo "/lib/modules/$KREL/$rel" >>"$st/etc/attestfs/modules"
	done <"$TMP/modorder"
	# the vsock modules (those not loaded already), for /init to load when there is a device
	# shellcheck disable=SC2086 # a list of module names
	modorder $VSOCK_MODULES | grep -vxF -f "$TMP/modorder" >"$TMP/vsockorder" || true
	: >"$st/etc/attestfs/vsock-modules"
	while read -r ko; do
		rel=${ko#"$MODDIR"/}
		mkdir -p "$st/lib/modules/$KREL/$(dirname "$rel")"
		cp "$ko" "$st/lib/modules/$KREL/$rel"
		echo "/lib/modules/$KREL/$rel" >>"$st/etc/attestfs/vsock-modules"
	done <"$TMP/vsockorder"
	cp "$MODDIR/modules.builtin" "$MODDIR/modules.builtin.modinfo" "$st/lib/modules/$KREL/"
	depmod -b "$st" "$KREL" 2>/dev/null || true # so `modprobe` works in the guest
	install -m 0755 "$HERE/init" "$st/init"
	install -m 0755 "$HERE/backdoor" "$st/bin/attestfs-backdoor"
	install -m 0755 "$HERE/backdoor-hvc0" "$st/bin/attestfs-backdoor-hvc0"
	install -m 0755 "$HERE/backdoor-vsock" "$st/bin/attestfs-backdoor-vsock"
	install -m 0755 "$VSOCK_LISTEN" "$st/bin/attestfs-vsock-listen"
	echo "$1" >"$st/etc/attestfs/variant"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$st/etc/passwd"
	printf 'root:x:0:\ntty:x:5:\n' >"$st/etc/group"
	chmod 0700 "$st/root"
	chmod 1777 "$st/tmp"
	# The kernel opens /dev/console for /init before devtmpfs is mounted (needs root to create;
	# without it /init still reopens the console after mounting devtmpfs).
	mknod -m 0600 "$st/dev/console" c 5 1 2>/dev/null || true
	find "$st" -exec touch -h -d @0 {} +
	(cd "$st" && find . -mindepth 1 | sort | cpio -o -H newc -R 0:0 --reproducible --quiet) |
		gzip -9n >"$2"
	rm -rf "$st"
}

for v in $VARIANTS; do
	t0=$(now)
	out="$CACHE/$v"
	if [ -f "$out/initrd.gz" ] && [ "$(cat "$out/stamp" 2>/dev/null || true)" = "$HASH" ]; then
		log "$v: up to date"
		continue
	fi
	mkdir -p "$out"
	build_initrd "$v" "$TMP/initrd.gz"
	mv "$TMP/initrd.gz" "$out/initrd.gz"
	ln -sfn "../kernel/$(readlink "$CACHE/kernel/vmlinuz")" "$out/.vmlinuz.new"
	mv -T "$out/.vmlinuz.new" "$out/vmlinuz"
	echo "$CMDLINE" >"$out/cmdline"
	echo "$HASH" >"$out/stamp"
	log "$v: built $out/initrd.gz ($(($(wc -c <"$out/initrd.gz") / 1024)) KiB) in $(since "$t0")"
done

# ---------------------------------------------------------------- debian (build-debian.sh)
if [ -n "$DEBIAN" ]; then
	ATTESTFS_GUEST_BUILD=1 CACHE=$CACHE TMP=$TMP KPKG=$KPKG KVERSION=$KVERSION KREL=$KREL \
		KDIR=$KDIR BB=$BB BBVERSION=$BBVERSION sh "$HERE/build-debian.sh"
fi

# ---------------------------------------------------------------- vmlinux (Firecracker, Cloud Hypervisor)
# The uncompressed ELF kernel the microVMs boot (PVH), beside every vmlinuz; once per kernel.
"$HERE/extract-vmlinux" "$CACHE"
