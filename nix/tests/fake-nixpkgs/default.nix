# import nixpkgs { system, overlays }: fake packages that evaluate and are
# never built (their builder fails).
{ system ? "x86_64-linux", overlays ? [ ] }:
let
  lib = import ./lib.nix;
  fake = name: extra: derivation ({
    inherit name system;
    builder = "/bin/sh";
    args = [ "-c" "echo fake nixpkgs cannot build ${name}; exit 1" ];
  } // extra);
  tool = name: fake name { };
  mkDerivation = attrs:
    let drv = fake "${attrs.pname}-${attrs.version}" {
      srcPath = attrs.src;
      postInstall = attrs.postInstall or "";
    };
    in drv // {
      overrideAttrs = f: mkDerivation (attrs // f attrs);
      nativeBuildInputs = attrs.nativeBuildInputs or [ ];
      meta = attrs.meta or { };
    };
  base = self: {
    inherit lib system;
    path = ./.;
    stdenv = { hostPlatform = { inherit system; }; inherit mkDerivation; };
    callPackage = f: args:
      let fn = import f; in
      fn (builtins.intersectAttrs (builtins.functionArgs fn) self // args);
    mkShell = attrs: fake "shell" { };
    writeShellScript = name: text: fake name { inherit text; };
    writeText = name: text: fake name { inherit text; };
    python3 = tool "python3" // {
      withPackages = f: tool "python3-env";
    };
  } // lib.genAttrs [
    "bash" "bashInteractive" "coreutils" "findutils" "gnugrep" "gnused" "gawk"
    "util-linux" "procps" "curl" "shellcheck" "qemu" "vde2" "busybox" "cmocka"
    "pkg-config" "makeWrapper" "fuse3" "json-c" "tesseract" "leptonica" "gdb"
    "bats"
  ] tool;
  pkgs = let self = builtins.foldl' (acc: ov: acc // ov self acc) (base self) overlays; in self;
in
pkgs
