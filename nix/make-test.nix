# lib.makeTest's core, shared by the nixpkgs and the host flavours: a test is
# a derivation that runs attestfs-run in the build sandbox.
#   system, shell, path   where it builds: bash, and the PATH of the tools
#   attestfs              the package (bin/attestfs, attestfs-run, attestfs-ocr)
# The test's own arguments:
#   name                  vm-test-run-NAME
#   machines              the attestfs config's "machines" (paths in it are
#                         store paths, so their closures enter the sandbox)
#   testScript            a shell script: a path or its text; run with bash,
#                         VMS set to the mount
#   timeout               the config's default deadline of waits and commands
#   globalTimeout         seconds for the whole test (124 past it)
#   requireKvm            route the build to builders with the kvm feature
#                         (without it attestfs runs the guests under TCG)
#   attestfsOptions       more mount options (["accel=tcg"])
#   skipLint              no shellcheck of the script (bash -n still runs)
#   language              "shell", or "python": testScript is a NixOS test
#                         script, run by attestfs-test-driver (lib.runNixOSTest,
#                         nix/nixos-test-args.nix); linted with pyflakes
#   extraPath             directories first on PATH (python with the test's
#                         extraPythonPackages)
# The result is the test derivation (its failure is the script's failure),
# with .artifacts (logs, consoles, $ARTIFACTS, and junit.xml for Python;
# always builds), .interactive (bin/attestfs-interactive-NAME) and .config
# (the attestfs config); for Python also .driver and .driverInteractive
# (bin/nixos-test-driver, as nixpkgs has them).
{ system, shell, path, attestfs }:
{ name
, machines
, testScript
, timeout ? null
, globalTimeout ? 3600
, requireKvm ? false
, attestfsOptions ? [ ]
, skipLint ? false
, language ? "shell"
, extraPath ? ""
}:
let
  config = { inherit machines; }
    // (if timeout == null then { } else { inherit timeout; });
  scriptText =
    if builtins.isPath testScript then builtins.readFile testScript else testScript;
  mk = mode: prefix: derivation {
    name = "${prefix}-${name}";
    inherit system mode attestfs;
    builder = shell;
    args = [ ./run-test.sh ];
    PATH = "${extraPath}${if extraPath == "" then "" else ":"}${attestfs}/bin:${path}";
    inherit language;
    testName = name;
    machinesJson = builtins.toJSON config;
    testScript = scriptText;
    passAsFile = [ "machinesJson" "testScript" ];
    globalTimeout = toString globalTimeout;
    attestfsOptions = builtins.concatStringsSep "," attestfsOptions;
    lint = if skipLint then "" else "1";
    # as nixpkgs' run.nix: nixos-test, kvm only when required; "fuse" is the
    # gate for builders whose sandbox has /dev/fuse (see README)
    requiredSystemFeatures =
      if mode == "interactive" || mode == "driver" then [ ]
      else [ "nixos-test" "fuse" ] ++ (if requireKvm then [ "kvm" ] else [ ]);
  };
in
mk "run" "vm-test-run" // {
  artifacts = mk "artifacts" "vm-test-artifacts";
  interactive = mk "interactive" "vm-test-interactive";
  inherit config;
} // (if language == "python" then {
  driver = mk "driver" "nixos-test-driver";
  driverInteractive = mk "interactive" "nixos-test-driver-interactive";
} else { })
