#!/bin/sh
# Installs the Debian packages attestfs needs to build, test and run guests.
# Uses the host's configured apt sources; does nothing when all are present.
set -eu
pkgs="build-essential pkg-config libfuse3-dev fuse3 libjson-c-dev libcurl4-openssl-dev
libtesseract-dev tesseract-ocr tesseract-ocr-eng libcmocka-dev bats bats-assert bats-support
qemu-system-x86 qemu-utils busybox-static cpio kmod vde2 socat curl mmdebstrap e2fsprogs
libleptonica-dev procps nix-bin shellcheck clang libclang-rt-dev jq python3 mandoc python3-pyflakes
python3-yaml python3-jsonschema"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"

# Nix builds in its sandbox as one of the nixbld users. Debian's nix-bin
# leaves them to nix-setup-systemd, which would also start a nix-daemon:
# tests/integration/t1300-nix.bats uses the local store without one.
nix_build_users() {
	getent group nixbld >/dev/null || $sudo groupadd --system nixbld
	for i in 1 2 3 4; do
		getent passwd "nixbld$i" >/dev/null ||
			$sudo useradd --system --gid nixbld --groups nixbld --no-create-home \
				--home-dir /var/empty --shell /usr/sbin/nologin "nixbld$i"
	done
}

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
fi
nix_build_users
