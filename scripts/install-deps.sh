#!/bin/sh
# Installs the Debian packages attestfs needs to build, test and run guests.
# Uses the host's configured apt sources; does nothing when all are present.
set -eu
pkgs="build-essential pkg-config libfuse3-dev fuse3 libjson-c-dev libcurl4-openssl-dev
libtesseract-dev tesseract-ocr tesseract-ocr-eng libcmocka-dev bats bats-assert bats-support
qemu-system-x86 qemu-utils busybox-static cpio kmod vde2 socat curl mmdebstrap e2fsprogs
libleptonica-dev procps clang libclang-rt-dev"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
