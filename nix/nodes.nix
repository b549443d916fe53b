# NixOS nodes -> attestfs machines. The nodes are evaluated by nixpkgs' own
# test framework (nixos/lib/testing: qemu-vm.nix, test-instrumentation.nix,
# node numbers, VLAN NICs with the MACs 52:54:00:12:VLAN:NODE, addresses and
# /etc/hosts), plus attestfs's instrumentation; its Python driver is never
# built. Each node's run-<name>-vm becomes the machine's start_command, its
# virtualisation.vlans the machine's vlans. attestfs numbers machines by name
# from 1, as nixpkgs numbers nodes, so both agree on every address.
{ pkgs, name, nodes, instrumentation, shells ? 4, defaults ? { } }:
let
  inherit (pkgs) lib;
  testing = import (pkgs.path + "/nixos/lib/testing/default.nix") { inherit lib; };
  evaluated = testing.evalTest {
    name = "attestfs-${name}";
    hostPkgs = pkgs;
    node.pkgs = pkgs;
    inherit nodes;
    defaults = { imports = [ instrumentation defaults ]; };
    testScript = "";
  };
  machine = node:
    let cfg = evaluated.config.nodes.${node}; in
    {
      start_command = "${cfg.system.build.vm}/bin/run-${cfg.system.name}-vm";
      vlans = cfg.virtualisation.vlans;
      inherit shells;
    };
in
{
  machines = lib.genAttrs (builtins.attrNames nodes) machine;
  nodes = evaluated.config.nodes;
}
