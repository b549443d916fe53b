#!/bin/sh
# tests/guest/build-debian.sh CACHE_DIR — builds the `debian` test guest (same as
# `tests/guest/build.sh CACHE_DIR debian`, which fetches the kernel and busybox first and then runs
# this script with them in the environment).
#
#   CACHE_DIR/debian/vmlinuz       -> ../kernel/<abi>_<pkgversion>/boot/vmlinuz-<abi>
#   CACHE_DIR/debian/initrd.gz     busybox initramfs: virtio + ext4 modules, mounts root=, switch_root
#   CACHE_DIR/debian/base.img      raw ext4 (sparse), Debian bookworm: systemd, postgresql, nginx;
#                                  read-only base, every boot gets its own qcow2 overlay
#   CACHE_DIR/debian/cmdline       root=/dev/vda rw console=ttyS0 quiet panic=-1
#   CACHE_DIR/debian/run-debian-vm start script in the style of nixpkgs' run-<name>-vm
#   CACHE_DIR/debian/run-nixos-vm  the same guest as a stock NixOS test VM: NixOS's backdoor (bash on
#                                  hvc0) instead of attestfs's pool, chosen by a kernel parameter
#   CACHE_DIR/debian/stamp         rootfs=<sha256 of its recipe> initrd=<sha256 of its recipe>
#   CACHE_DIR/debs/                the .debs of the last root file system build (a rebuild after a
#                                  recipe change downloads only what changed)
#
# The root file system comes from mmdebstrap (root mode: needs root) with the apt sources of the
# host (the bookworm entries that apt-get indextargets lists; no mirror is named here), turned into
# an ext4 image by mkfs.ext4 -d (no loop mount). The image and the initramfs are rebuilt only when
# their recipe (these scripts, tests/guest/debian/, the backdoor, kernel and busybox versions)
# changes. Facts and timings behind the recipe: notes/guests.md, tests/guest/README.md.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "${ATTESTFS_GUEST_BUILD:-}" != 1 ]; then
	if [ $# -ne 1 ] || [ -z "$1" ]; then
		echo "usage: $0 CACHE_DIR" >&2
		exit 2
	fi
	exec "$HERE/build.sh" "$1" debian
fi
# From build.sh: CACHE TMP KPKG KVERSION KREL KDIR BB BBVERSION
: "${CACHE:?}" "${TMP:?}" "${KPKG:?}" "${KVERSION:?}" "${KREL:?}" "${KDIR:?}" "${BB:?}" "${BBVERSION:?}"
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C
MODDIR="$KDIR/lib/modules/$KREL"
OUT="$CACHE/debian"
W="$TMP/debian"
SUITE=bookworm
CMDLINE="root=/dev/vda rw console=ttyS0 quiet panic=-1"
# run-nixos-vm's kernel parameters: the guest plays a stock NixOS test VM (debian/units/backdoor.service)
NIXOS_PARAMS="attestfs.backdoor=nixos systemd.hostname=nixos"
# initramfs: what it takes to reach the root file system and the backdoor ports
MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console
failover net_failover virtio_net virtio_blk virtio_rng crc32c_generic ext4"
# the image gets those plus these (modprobe works for them in the guest)
MODULES_EXTRA="autofs4 fuse overlay 9p 9pnet_virtio tun vmw_vsock_virtio_transport"
PACKAGES="systemd,systemd-sysv,postgresql,nginx,procps,iproute2,curl,kmod"

log() { echo "guest: debian: $*"; }
die() {
	echo "guest: debian: error: $*" >&2
	exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; } # shell-quote one word

rm -rf --one-file-system "$W"
mkdir -p "$W" "$OUT"

modorder() { # MODULE... -> .ko paths, dependencies first, each once
	: >"$W/deps"
	for m in "$@"; do
		modprobe -d "$KDIR" -S "$KREL" --show-depends "$m" >>"$W/deps" ||
			die "module $m not found in $MODDIR"
	done
	awk '$1 == "insmod" && !seen[$2]++ { print $2 }' "$W/deps"
}

hash_of() { sha256sum | cut -d' ' -f1; }
# The recipe is this script up to its start-script section: the run scripts are rewritten on every
# run (when they differ), so a change to them does not rebuild the image or the initramfs.
recipe() { sed '/^# -* kernel link, cmdline, start script$/,$d' "$HERE/build-debian.sh"; }
INITRD_HASH=$({
	recipe
	cat "$HERE/debian/init"
	echo "$KPKG $KVERSION $KREL busybox-static $BBVERSION $MODULES"
} | hash_of)
ROOTFS_HASH=$({
	recipe
	cat "$HERE/backdoor" "$HERE/backdoor-vsock" "$ATTESTFS_VSOCK_LISTEN"
	find "$HERE/debian" -type f ! -name init | LC_ALL=C sort | while read -r f; do
		echo "${f#"$HERE"/}"
		cat "$f"
	done
	echo "$KPKG $KVERSION $KREL $MODULES $MODULES_EXTRA $SUITE $PACKAGES"
} | hash_of)
old_stamp=$(cat "$OUT/stamp" 2>/dev/null || true)
stamp_field() { echo "$old_stamp" | sed -n "s/^$1=//p"; }

# ---------------------------------------------------------------- initramfs
t0=$(now)
if [ -f "$OUT/initrd.gz" ] && [ "$(stamp_field initrd)" = "$INITRD_HASH" ]; then
	log "initrd.gz up to date"
else
	st="$W/initrd"
	mkdir -p "$st"
	(cd "$st" && mkdir -p bin sbin usr/bin usr/sbin dev proc sys newroot etc/attestfs "lib/modules/$KREL")
	cp "$BB" "$st/bin/busybox"
	chmod 0755 "$st/bin/busybox"
	# Never link "busybox" itself: that would replace the binary with a self-link.
	"$st/bin/busybox" --list-full | while read -r a; do
		case $a in bin/busybox | linuxrc | '') continue ;; esac
		[ -e "$st/$a" ] || ln -s /bin/busybox "$st/$a"
	done
	for a in bin/sh sbin/switch_root bin/mount sbin/insmod sbin/findfs sbin/poweroff; do
		[ -L "$st/$a" ] || die "busybox lacks $a"
	done
	# shellcheck disable=SC2086 # a list of module names
	modorder $MODULES >"$W/modorder"
	: >"$st/etc/attestfs/modules"
	while read -r ko; do
		rel=${ko#"$MODDIR"/}
		mkdir -p "$st/lib/modules/$KREL/$(dirname "$rel")"
		cp "$ko" "$st/lib/modules/$KREL/$rel"
		echo "/lib/modules/$KREL/$rel" >>"$st/etc/attestfs/modules"
	done <"$W/modorder"
	cp "$MODDIR/modules.builtin" "$MODDIR/modules.builtin.modinfo" "$st/lib/modules/$KREL/"
	depmod -b "$st" "$KREL" 2>/dev/null || true
	install -m 0755 "$HERE/debian/init" "$st/init"
	mknod -m 0600 "$st/dev/console" c 5 1 2>/dev/null || true
	find "$st" -exec touch -h -d @0 {} +
	(cd "$st" && find . -mindepth 1 | sort | cpio -o -H newc -R 0:0 --reproducible --quiet) |
		gzip -9n >"$W/initrd.gz"
	mv "$W/initrd.gz" "$OUT/initrd.gz"
	rm -rf "$st"
	log "built initrd.gz ($(($(wc -c <"$OUT/initrd.gz") / 1024)) KiB) in $(since "$t0")"
fi

# ---------------------------------------------------------------- root file system -> base.img
t0=$(now)
if [ -f "$OUT/base.img" ] && [ "$(stamp_field rootfs)" = "$ROOTFS_HASH" ]; then
	log "base.img up to date"
else
	[ "$(id -u)" = 0 ] || die "building base.img needs root (mmdebstrap --mode=root; mkfs.ext4 -d copies owners)"
	for t in mmdebstrap mkfs.ext4 depmod systemctl; do
		command -v $t >/dev/null 2>&1 || die "$t is missing (scripts/install-deps.sh installs it)"
	done
	# The host's apt sources for the suite, as apt itself lists them (deb URI SUITE COMPONENT).
	# shellcheck disable=SC2016 # $(...) are apt's format fields
	apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' \
		2>/dev/null | awk -v s="$SUITE" '$2 == s || $2 == s "-updates" || $2 == s "-security" {
			print "deb " $0 }' | sort -u >"$W/sources.list" || true
	set --
	if [ -s "$W/sources.list" ]; then
		set -- "$W/sources.list"
	else
		log "the host's apt sources have no $SUITE entries; mmdebstrap picks its default mirror"
	fi
	# The host's apt settings that decide whether fetching works at all (proxies, a snapshot
	# mirror's expired Release files) go along (into the image's apt.conf.d too: harmless there).
	{
		echo 'Acquire::Languages "none";'
		apt-config dump 2>/dev/null | grep -E \
			'^Acquire::(Check-Valid-Until|Check-Date|Retries|https?::[Pp]roxy|ftp::[Pp]roxy) ' || true
	} >"$W/aptopts"

	mkdir -p "$CACHE/debs"
	# shellcheck disable=SC2086 # lists of module names
	modorder $MODULES $MODULES_EXTRA >"$W/rootfs-modules"
	hook="sh $(q "$HERE/debian/customize.sh") \"\$1\" $(q "$HERE") $(q "$KREL") $(q "$W/rootfs-modules") $(q "$ATTESTFS_VSOCK_LISTEN")"
	log "mmdebstrap $SUITE ($PACKAGES)"
	# shellcheck disable=SC2016 # "$1" in the hooks is mmdebstrap's chroot directory
	mmdebstrap --mode=root --format=directory --variant=minbase --include="$PACKAGES" \
		--aptopt="$W/aptopts" \
		--dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--dpkgopt='path-include=/usr/share/locale/locale.alias' \
		--dpkgopt='path-exclude=/usr/share/lintian/*' \
		--dpkgopt='path-exclude=/usr/lib/*/libLLVM-*' \
		--dpkgopt='path-exclude=/usr/lib/llvm-*/lib/libLLVM*' \
		--dpkgopt='path-exclude=/usr/lib/*/libz3.so*' \
		--dpkgopt='path-exclude=/usr/lib/postgresql/*/lib/llvmjit*' \
		--dpkgopt='path-exclude=/usr/lib/postgresql/*/lib/bitcode/*' \
		--skip=essential/unlink \
		--setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
		--setup-hook="sync-in $(q "$CACHE/debs") /var/cache/apt/archives" \
		--customize-hook="$hook" \
		--customize-hook="mkdir -p $(q "$W/debs")" \
		--customize-hook="sync-out /var/cache/apt/archives $(q "$W/debs")" \
		--quiet "$SUITE" "$W/rootfs" "$@" || die "mmdebstrap failed"
	log "root file system done ($(since "$t0"))"
	rm -rf "$W/debs/partial" "$W/debs/lock"
	rm -rf "$CACHE/debs"
	mv "$W/debs" "$CACHE/debs"

	t1=$(now)
	used=$(du -sm "$W/rootfs" | cut -f1)
	size=$((used * 3 / 2 + 384))
	mkfs.ext4 -q -F -L attestfs-root -m 0 -d "$W/rootfs" "$W/base.img" "${size}M" >/dev/null ||
		die "mkfs.ext4 -d failed"
	rm -rf --one-file-system "$W/rootfs"
	mv "$W/base.img" "$OUT/base.img"
	log "base.img: ${used} MiB of files, $(du -m "$OUT/base.img" | cut -f1) MiB allocated / ${size} MiB (mkfs.ext4 $(since "$t1"); total $(since "$t0"))"
fi

# ---------------------------------------------------------------- kernel link, cmdline, start script
ln -sfn "../kernel/$(readlink "$CACHE/kernel/vmlinuz")" "$OUT/.vmlinuz.new"
mv -T "$OUT/.vmlinuz.new" "$OUT/vmlinuz"
echo "$CMDLINE" >"$W/cmdline"
cmp -s "$W/cmdline" "$OUT/cmdline" || mv "$W/cmdline" "$OUT/cmdline"
# run-NAME-vm PARAMS CPUS: the start script; PARAMS go on the kernel command line before
# $QEMU_KERNEL_PARAMS (run-nixos-vm: the stock NixOS backdoor on hvc0 instead of attestfs's pool)
write_run_script() {
	sed -e "s/@NAME@/$1/g" -e "s/@PARAMS@/$2/g" -e "s/@CPUS@/$3/g" >"$W/run-$1-vm" <<'EOF'
#!/bin/sh
# run-@NAME@-vm: starts the attestfs debian test guest (generated by tests/guest/build-debian.sh),
# in the style of nixpkgs' qemu-vm.nix run-<name>-vm: a fresh qcow2 overlay over the read-only
# base.img in $TMPDIR (attestfs sets TMPDIR to the machine's state directory and USE_TMPDIR=1),
# then QEMU with the guest's own arguments followed by $QEMU_OPTS and "$@" (attestfs passes its
# console, QMP and shell sockets there). $QEMU_KERNEL_PARAMS is appended to the kernel command line
# and $QEMU_NET_OPTS to the user-mode netdev (e.g. hostfwd=tcp:127.0.0.1:8080-:80), as in nixpkgs.
set -e
D=$(cd "$(dirname "$0")" && pwd)
if [ -z "${TMPDIR:-}" ] || [ -z "${USE_TMPDIR:-}" ]; then
	TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/@NAME@-vm.XXXXXXXXXX")
fi
DISK=$TMPDIR/@NAME@.qcow2
rm -f "$DISK"
qemu-img create -q -f qcow2 -b "$D/base.img" -F raw "$DISK"
# -smp @CPUS@: run-nixos-vm has nixpkgs' virtualisation.cores default, 1 (bash's forks under
# multi-threaded TCG cost less with one vCPU: no TLB flush to synchronise across vCPUs); -smp N in
# QEMU_OPTS raises it (QEMU takes the last -smp).
# shellcheck disable=SC2086 # QEMU_OPTS is a list of words, as in nixpkgs
exec qemu-system-x86_64 -name @NAME@ -accel tcg -machine q35 -cpu max -smp @CPUS@ -m 256 \
	-kernel "$D/vmlinuz" -initrd "$D/initrd.gz" \
	-append "$(cat "$D/cmdline")@PARAMS@ ${QEMU_KERNEL_PARAMS:-}" \
	-drive "file=$DISK,format=qcow2,if=none,id=disk.0,cache=unsafe,discard=unmap" \
	-device virtio-blk-pci,drive=disk.0 \
	-netdev "user,id=user0,restrict=on${QEMU_NET_OPTS:+,$QEMU_NET_OPTS}" \
	-device virtio-net-pci,netdev=user0,id=nic0 \
	$QEMU_OPTS "$@"
EOF
	chmod 0755 "$W/run-$1-vm"
	cmp -s "$W/run-$1-vm" "$OUT/run-$1-vm" || mv "$W/run-$1-vm" "$OUT/run-$1-vm"
}
write_run_script debian '' 2
write_run_script nixos " $NIXOS_PARAMS" 1
printf 'rootfs=%s\ninitrd=%s\n' "$ROOTFS_HASH" "$INITRD_HASH" >"$W/stamp"
cmp -s "$W/stamp" "$OUT/stamp" || mv "$W/stamp" "$OUT/stamp"
rm -rf --one-file-system "$W"
