# lib.runNixOSTest (alias lib.nixosTest): nixpkgs' runNixOSTest / nixosTest
# arguments in, lib.makeTest's arguments out, for a Python testScript that
# attestfs-test-driver runs (the NixOS driver's API over the mount). So an
# existing NixOS test moves over by changing the function's name (and giving
# pkgs, as lib.makeTest takes it).
#   python    extraPythonPackages -> a directory with python3 ("": the
#             builder's own python3)
{ python }:
args:
let
  # nixpkgs' options that change nothing here, and why (README, "Porting")
  ignored = [
    "enableOCR"           # attestfs always has OCR (screen.txt)
    "skipTypeCheck"       # no mypy: the script is linted with pyflakes only
    "extraPythonPackages" # on PATH through python
    "interactive"         # .driverInteractive is the same test, with -I
    "meta"
    "passthru"
    "hostPkgs"
    "node"
    "qemu"
    "enableDebugHook"
    "sshBackdoor"
  ];
  refused = builtins.filter (a: args ? ${a}) [ "containers" "extraDriverArgs" ];
in
if refused != [ ] then
  throw "attestfs: runNixOSTest: ${builtins.concatStringsSep ", " refused} not supported (systemd-nspawn containers and driver arguments are nixos-test-driver's)"
else
  builtins.removeAttrs args ignored // {
    language = "python";
    extraPath = python (args.extraPythonPackages or (_: [ ]));
  }
