# nixpkgs' test framework, faked: evalTest gives each node the attributes
# attestfs reads (system.name, system.build.vm, virtualisation.vlans).
{ lib }:
{
  evalTest = module: {
    config.nodes = builtins.mapAttrs
      (name: node:
        let
          m = if builtins.isFunction node then node { inherit lib; config = { }; pkgs = { }; } else node;
          vm = derivation {
            name = "nixos-vm";
            system = "x86_64-linux";
            builder = "/bin/sh";
            args = [ "-c" "exit 1" ];
          };
        in
        {
          system.name = name;
          system.build.vm = vm;
          virtualisation.vlans = m.virtualisation.vlans or [ 1 ];
        })
      module.nodes;
  };
}
