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
    else if builtins.isFunction (args.testScript or null) then
      throw "attestfs: lib.makeTest: a testScript function takes the nodes, which need nixpkgs"
    else
      import ./make-test.nix { inherit system shell path attestfs; }
        (builtins.removeAttrs args [ "pkgs" ]);
  # the host's python3 (on path); extra packages would need nixpkgs
  runNixOSTest = args: makeTest (import ./nixos-test-args.nix {
    python = extra:
      if extra { } == [ ] then ""
      else throw "attestfs: runNixOSTest: extraPythonPackages need nixpkgs; this flake was given the stub";
  } (builtins.removeAttrs args [ "pkgs" ]));
  examples = import ./examples-host.nix {
    inherit makeTest runNixOSTest;
    inherit (host) guests;
  };
in
{
  packages.${system} = {
    default = attestfs;
    inherit attestfs;
  };
  lib = {
    inherit makeTest runNixOSTest;
    nixosTest = runNixOSTest;
  };
  overlays.default = final: prev: {
    inherit attestfs;
    attestfsTesters = { inherit runNixOSTest; };
  };
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
    # the same with a Python testScript, nixpkgs' runNixOSTest arguments
    python-mock = runNixOSTest {
      name = "python-mock";
      machines.m.backend = "mock";
      enableOCR = true;
      skipTypeCheck = true;
      extraPythonPackages = _: [ ];
      testScript = ''
        start_all()
        with subtest("the mock answers"):
            out = machine.succeed("echo hello from python")
            t.assertEqual(out, "hello from python\n")
            machine.fail("exit 3")
      '';
    };
    # must fail: the script's assertion
    python-failing = runNixOSTest {
      name = "python-failing";
      machines.m.backend = "mock";
      testScript = ''
        machine.succeed("echo 'the guest answers'")
        machine.succeed("exit 3")
        print("not reached")
      '';
    };
    # must fail before anything boots: pyflakes finds an undefined name
    python-lint = runNixOSTest {
      name = "python-lint";
      machines.m.backend = "mock";
      testScript = "machine.succeed(no_such_name)";
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
