{
  description = "attestfs: virtual machines as files; NixOS VM tests as shell scripts";

  # Users get everything from nixpkgs. A machine without nixpkgs (offline CI)
  # overrides it with the stub, and gets the same outputs built with the
  # host's tools:
  #   nix flake check --override-input nixpkgs path:./nix/stub-nixpkgs
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }: import ./nix/outputs.nix { inherit self nixpkgs; };
}
