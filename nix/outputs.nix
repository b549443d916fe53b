# The flake's outputs, under the same names whether nixpkgs is real
# (with-nixpkgs.nix) or the stub of nix/stub-nixpkgs (host.nix: the host's
# compiler, QEMU and tiny test guest, for machines without nixpkgs).
{ self, nixpkgs }:
let
  common = {
    nixosModules.testInstrumentation = import ./test-instrumentation.nix;
    nixosModules.default = self.nixosModules.testInstrumentation;
  };
in
common // (if nixpkgs ? attestfsHost
  then import ./host.nix { inherit self; host = nixpkgs.attestfsHost; }
  else import ./with-nixpkgs.nix { inherit self nixpkgs; })
