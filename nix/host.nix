# The flake's outputs without nixpkgs (the stub of nix/stub-nixpkgs): built
# with the host's compiler, libraries, QEMU and tiny test guest, for offline
# CI. The names are those of with-nixpkgs.nix; NixOS nodes need nixpkgs.
{ self, host }:
let
  inherit (host) system shell path;
  # the C sources only: a change to nix/, an example or an integration test
  # rebuilds no package
  root = toString self.outPath;
  relative = p: builtins.substring (builtins.stringLength root + 1) 4096 (toString p);
  src = builtins.path {
    path = self.outPath;
    name = "attestfs-source";
    filter = p: type: !(builtins.elem (relative p) (import ./not-source.nix));
  };
  build = mode: name: derivation {
    inherit name system mode src;
    builder = shell;
    args = [ ./host-build.sh ];
    PATH = path;
  };
  attestfs = build "package" "attestfs";
  makeTest = args:
    if args ? nodes then
      throw "attestfs: lib.makeTest: nodes are NixOS modules and need nixpkgs; this flake was given the stub (use machines)"
    else
      import ./make-test.nix { inherit system shell path attestfs; }
        (builtins.removeAttrs args [ "pkgs" ]);
  examples = import ./examples-host.nix { inherit makeTest; inherit (host) guests; };
in
{
  packages.${system} = {
    default = attestfs;
    inherit attestfs;
  };
  lib = { inherit makeTest; };
  overlays.default = final: prev: { inherit attestfs; };
  checks.${system} = { inherit attestfs; unit = build "unit" "attestfs-unit"; }
    // (if host.guests == null then { } else examples.checks);
  # `nix build .#legacyPackages.x86_64-linux.selfTests.failing` must fail
  legacyPackages.${system}.selfTests = {
    # the sandbox mechanics without a VM: the mock backend's guest is a
    # host shell
    mock = makeTest {
      name = "mock";
      machines.m.backend = "mock";
      testScript = ''
        set -eu
        . "$VMS/attest.sh"
        echo start > "$VMS/m/ctl"
        echo "status: $(cat "$VMS/m/status")"
        grep ' fuse.attestfs ' /proc/self/mounts
        echo "pid 1: $(cat /proc/1/comm)"
      '';
    };
  } // (if host.guests == null then { } else examples.selfTests);
  devShells.${system}.default = derivation {
    name = "attestfs-shell";
    inherit system;
    builder = shell;
    args = [ "-c" "echo 'attestfs-shell: use the host tools (make deps)' >$out" ];
    PATH = path;
  };
}
