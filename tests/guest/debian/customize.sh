#!/bin/sh
# tests/guest/debian/customize.sh ROOT GUEST_DIR KERNEL_RELEASE MODULE_LIST VSOCK_LISTEN
# mmdebstrap --customize-hook of the debian guest (build-debian.sh): runs on the build host as root
# after all packages are installed into ROOT. GUEST_DIR is tests/guest; MODULE_LIST holds the .ko
# files (absolute paths in the unpacked kernel package, dependency order) to copy into the image.
set -eu
R=$1 G=$2 KREL=$3 MODLIST=$4 VSOCK_LISTEN=$5
D=$G/debian
ETC=$R/etc/systemd/system

# ---- identity: fixed machine-id (no first-boot logic), empty fstab (root comes from root=)
echo debian >"$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$R/etc/hosts"
echo 'nameserver 10.0.2.3' >"$R/etc/resolv.conf"
echo 617474657374667364656269616e0001 >"$R/etc/machine-id"
echo '# empty: the root file system comes from root= on the kernel command line' >"$R/etc/fstab"
chroot "$R" passwd -dq root

# ---- kernel modules: the initramfs's set plus a few extras, for modprobe/lsmod inside the guest
M=$R/usr/lib/modules/$KREL
mkdir -p "$M"
src=''
: >"$M/modules.order"
while read -r ko; do
	[ -n "$ko" ] || continue
	src=${ko%%/lib/modules/"$KREL"/*}/lib/modules/$KREL
	rel=${ko#"$src"/}
	mkdir -p "$M/$(dirname "$rel")"
	cp "$ko" "$M/$rel"
	echo "$rel" >>"$M/modules.order"
done <"$MODLIST"
cp "$src/modules.builtin" "$src/modules.builtin.modinfo" "$M/"
depmod -b "$R" "$KREL"

# ---- the backdoor (early, no udev), our units, drop-ins
install -m 0755 "$G/backdoor" "$R/usr/local/sbin/attestfs-backdoor"
install -m 0755 "$D/attestfs-backdoors" "$R/usr/local/sbin/attestfs-backdoors"
# over vsock (Firecracker, Cloud Hypervisor): attestfs-vsock-backdoor.service
install -m 0755 "$G/backdoor-vsock" "$R/usr/local/sbin/attestfs-backdoor-vsock"
install -m 0755 "$D/attestfs-vsock-backdoors" "$R/usr/local/sbin/attestfs-vsock-backdoors"
install -m 0755 "$VSOCK_LISTEN" "$R/usr/local/sbin/attestfs-vsock-listen"
# NixOS's stock backdoor on hvc0, for a boot with attestfs.backdoor=nixos (run-nixos-vm)
install -m 0755 "$D/nixos-backdoor" "$R/usr/local/sbin/attestfs-nixos-backdoor"
for u in "$D"/units/*; do
	install -m 0644 "$u" "$ETC/${u##*/}"
done
mkdir -p "$R/etc/attestfs" "$R/etc/systemd/journald.conf.d" "$R/etc/systemd/system.conf.d" \
	"$ETC/nginx.service.d"
install -m 0644 "$D/etc/network.ip" "$R/etc/attestfs/network.ip"
install -m 0644 "$D/etc/journald.conf" "$R/etc/systemd/journald.conf.d/attestfs.conf"
install -m 0644 "$D/etc/system.conf" "$R/etc/systemd/system.conf.d/attestfs.conf"
install -m 0644 "$D/etc/nginx.conf" "$ETC/nginx.service.d/attestfs.conf"
install -m 0644 "$D/etc/index.html" "$R/var/www/html/index.html"
rm -rf "$R/var/log/journal"

# ---- postgresql: one real unit (postgresql.service, alias postgres.service) replaces Debian's
# umbrella and its generator-made postgresql@15-main wiring; the cluster 15/main was created by the
# package's postinst (initdb ran in the chroot), so the first boot runs no initdb.
PG=$R/etc/postgresql/15/main
[ -f "$PG/postgresql.conf" ] || {
	echo "customize: no cluster 15/main in the image" >&2
	exit 1
}
rm -f "$ETC/multi-user.target.wants/postgresql.service"
rm -f "$R/usr/lib/systemd/system-generators/postgresql-generator"
echo manual >"$PG/start.conf"
mkdir -p "$PG/conf.d"
printf '# attestfs: the image leaves out LLVM (SLIM), so no JIT\njit = off\n' >"$PG/conf.d/attestfs.conf"
chroot "$R" chown postgres:postgres /etc/postgresql/15/main/conf.d/attestfs.conf
# root may connect as postgres without su (psql -U postgres), besides postgres itself
{
	echo '# attestfs: the OS users root and postgres may connect as postgres'
	echo 'local   all             postgres                                peer map=attestfs'
	cat "$PG/pg_hba.conf"
} >"$PG/pg_hba.conf.new"
cat "$PG/pg_hba.conf.new" >"$PG/pg_hba.conf"
rm -f "$PG/pg_hba.conf.new"
printf 'attestfs        root                    postgres\nattestfs        postgres                postgres\n' \
	>>"$PG/pg_ident.conf"

systemctl --root="$R" --quiet enable attestfs-backdoor.service attestfs-vsock-backdoor.service \
	backdoor.service attestfs-network.service \
	postgresql.service nginx.service

# ---- a user with a user unit; no lingering at boot (its manager starts when a test asks:
# systemctl start user@1000.service), so boots pay nothing for it
chroot "$R" useradd -m -u 1000 -s /bin/bash alice
mkdir -p "$R/etc/systemd/user"
for u in "$D"/user-units/*; do
	install -m 0644 "$u" "$R/etc/systemd/user/${u##*/}"
done
systemctl --root="$R" --global --quiet enable attestfs-hello.service
# the image has no D-Bus: make the runtime directory without asking logind over the bus
mkdir -p "$ETC/user-runtime-dir@.service.d"
install -m 0644 "$D/etc/user-runtime-dir.conf" "$ETC/user-runtime-dir@.service.d/attestfs.conf"
mkdir -p "$ETC/user@.service.d"
install -m 0644 "$D/etc/user-manager.conf" "$ETC/user@.service.d/attestfs.conf"

# ---- what a test guest does not need at boot (each costs process starts under TCG, some hang
# without udev); see notes/guests.md
for u in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
	e2scrub_reap.service fstrim.timer systemd-tmpfiles-clean.timer getty@tty1.service \
	getty-static.service serial-getty@ttyS0.service serial-getty@hvc0.service \
	console-getty.service systemd-networkd-wait-online.service systemd-timesyncd.service \
	systemd-random-seed.service systemd-journal-flush.service systemd-update-utmp.service \
	systemd-update-utmp-runlevel.service proc-sys-fs-binfmt_misc.automount \
	systemd-firstboot.service ldconfig.service systemd-hwdb-update.service \
	systemd-journal-catalog-update.service systemd-update-done.service \
	systemd-sysusers.service dev-hugepages.mount sys-kernel-debug.mount \
	sys-kernel-tracing.mount modprobe@configfs.service modprobe@dm_mod.service \
	modprobe@drm.service modprobe@efi_pstore.service modprobe@loop.service; do
	ln -sfn /dev/null "$ETC/$u"
done
