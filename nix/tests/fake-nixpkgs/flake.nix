{
  # A fake nixpkgs, for evaluation only: just enough of nixpkgs' interface
  # (lib, import with overlays, callPackage, stdenv.mkDerivation, mkShell,
  # nixos/lib/testing's evalTest) for attestfs's nixpkgs flavour
  # (nix/with-nixpkgs.nix) to evaluate on a machine without nixpkgs, so that
  # `nix flake check --no-build` catches its wiring mistakes. Nothing it
  # makes can be built. tests/integration/t1300-nix.bats uses it.
  description = "fake nixpkgs: attestfs's evaluation test";
  outputs = { self }: { lib = import ./lib.nix; };
}
