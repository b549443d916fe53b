# shellcheck shell=bash disable=SC2154 # the derivation's attributes arrive as variables
# Builds attestfs in the sandbox with the host's compiler and libraries
# (nix/host.nix; the builder's extra-sandbox-paths bring /usr in). The
# sandbox's /etc has no alternatives, so cc is called gcc.
set -eu
cp -r "$src"/. build
chmod -R u+w build
cd build
case $mode in
package) make -j"${NIX_BUILD_CORES:-1}" CC=gcc PREFIX="$out" install ;;
unit)
	make -j"${NIX_BUILD_CORES:-1}" CC=gcc unit
	mkdir -p "$out"
	echo "unit tests passed" >"$out/result"
	;;
esac
true
