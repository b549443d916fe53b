# The flake's outputs with nixpkgs: attestfs from nixpkgs' stdenv, tests
# whose machines are NixOS nodes.
{ self, nixpkgs }:
let
  inherit (nixpkgs) lib;
  systems = [ "x86_64-linux" "aarch64-linux" ];
  forAll = f: lib.genAttrs systems (system: f (import nixpkgs {
    inherit system;
    overlays = [ self.overlays.default ];
  }));
  # the C sources only: a change to nix/, an example or an integration test
  # rebuilds no package
  src = lib.cleanSourceWith {
    src = self;
    filter = path: type: !(builtins.elem
      (lib.removePrefix (toString self + "/") (toString path))
      (import ./not-source.nix));
  };

  # lib.makeTest { pkgs, name, nodes | machines, testScript, ... }: see
  # nix/make-test.nix for the rest of the arguments. nodes are NixOS
  # modules; machines an attestfs config's "machines" (both may be given).
  makeTest =
    { pkgs
    , nodes ? { }
    , machines ? { }
    , shells ? 4
    , defaults ? { }
    , testScript
    , ...
    }@args:
    let
      attestfs = pkgs.attestfs or (pkgs.callPackage ./package.nix { inherit src; });
      fromNodes = import ./nodes.nix {
        inherit pkgs nodes shells defaults;
        inherit (args) name;
        instrumentation = self.nixosModules.testInstrumentation;
      };
      core = import ./make-test.nix {
        inherit (pkgs.stdenv.hostPlatform) system;
        inherit attestfs;
        shell = "${pkgs.bash}/bin/bash";
        path = lib.makeBinPath (with pkgs; [
          bash coreutils findutils gnugrep gnused gawk util-linux procps
          curl shellcheck
        ]);
      };
      test = core (builtins.removeAttrs args [ "pkgs" "nodes" "shells" "defaults" ] // {
        machines = fromNodes.machines // machines;
        # as nixpkgs: testScript may be a function of the evaluated nodes
        testScript = if builtins.isFunction testScript
          then testScript { inherit (fromNodes) nodes; } else testScript;
      });
    in
    test // { inherit (fromNodes) nodes; };

  # lib.runNixOSTest { pkgs, name, nodes, testScript (Python), ... }: an
  # existing NixOS test, run by attestfs-test-driver (nix/nixos-test-args.nix)
  runNixOSTest = { pkgs, ... }@args: makeTest (import ./nixos-test-args.nix {
    python = extra:
      "${pkgs.python3.withPackages (p: extra p ++ [ p.pyflakes ])}/bin";
  } args);

  examples = pkgs: {
    hello = makeTest {
      inherit pkgs;
      name = "hello";
      nodes.hello = { };
      testScript = ../examples/hello/test.sh;
    };
    postgres = makeTest {
      inherit pkgs;
      name = "postgres";
      nodes.db = {
        services.postgresql.enable = true;
        # the example names the unit as Debian's guest does
        systemd.services.postgresql.aliases = [ "postgres.service" ];
      };
      testScript = ../examples/postgres/test.sh;
    };
    web-db = makeTest {
      inherit pkgs;
      name = "web-db";
      # the example serves its pages with busybox httpd
      nodes = lib.genAttrs [ "client" "web" "db" ] (node: {
        environment.systemPackages = [ (lib.lowPrio pkgs.busybox) ];
        networking.firewall.enable = false;
        virtualisation.vlans = { client = [ 1 ]; web = [ 1 2 ]; db = [ 2 ]; }.${node};
      });
      testScript = ../examples/web-db/test.sh;
    };
    # examples/snapshots is not here: QEMU cannot snapshot a machine whose
    # run-<name>-vm shares the store over 9p (see README, Snapshots).
  };
in
{
  overlays.default = final: prev: {
    attestfs = final.callPackage ./package.nix { inherit src; };
    # pkgs.testers.runNixOSTest { ... } -> pkgs.attestfsTesters.runNixOSTest { ... }
    attestfsTesters.runNixOSTest = args: runNixOSTest (args // { pkgs = final; });
  };

  packages = forAll (pkgs: {
    default = pkgs.attestfs;
    inherit (pkgs) attestfs;
  });

  lib = {
    inherit makeTest runNixOSTest;
    nixosTest = runNixOSTest;
  };

  checks = forAll (pkgs: {
    inherit (pkgs) attestfs;
    unit = pkgs.attestfs.overrideAttrs (old: {
      pname = "attestfs-unit";
      nativeBuildInputs = old.nativeBuildInputs ++ [ pkgs.cmocka ];
      buildFlags = [ "unit" ];
      postPatch = "patchShebangs tests";
      dontInstall = true;
      postBuild = ''
        mkdir -p $out
        echo "unit tests passed" > $out/result
      '';
    });
  } // examples pkgs);

  legacyPackages = forAll (pkgs: {
    selfTests.python = runNixOSTest {
      inherit pkgs;
      name = "python";
      nodes.hello = { };
      extraPythonPackages = p: [ p.pyflakes ];
      testScript = { nodes, ... }: ''
        start_all()
        machine.wait_for_unit("multi-user.target")
        t.assertIn("Linux", machine.succeed("uname -s"))
        # nodes, as nixpkgs passes them: ${nodes.hello.networking.hostName or "hello"}
      '';
    };
    selfTests.failing = makeTest {
      inherit pkgs;
      name = "failing";
      nodes.hello = { };
      testScript = ''
        set -eu
        . "$VMS/attest.sh"
        succeed hello 'echo "the guest answers: $(uname -s)"'
        succeed hello 'exit 3'
      '';
    };
    selfTests.syntaxError = makeTest {
      inherit pkgs;
      name = "syntax-error";
      nodes.hello = { };
      testScript = "if then fi";
    };
  });

  devShells = forAll (pkgs: {
    default = pkgs.mkShell {
      inputsFrom = [ pkgs.attestfs ];
      packages = with pkgs; [ cmocka bats shellcheck qemu vde2 gdb ];
    };
  });
}
