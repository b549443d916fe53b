# shellcheck shell=bash
# the stock-NixOS-guest rows (tests/bench/nixos.sh)
. "$TOP/tests/bench/nixos.sh"
