# the few functions of nixpkgs' lib that attestfs's flake uses
rec {
  genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
  cleanSourceWith = { src, filter, name ? "source" }:
    builtins.path { path = src; inherit filter name; };
  removePrefix = p: s:
    let n = builtins.stringLength p; in
    if builtins.substring 0 n s == p then builtins.substring n 1000000 s else s;
  makeBinPath = ps: builtins.concatStringsSep ":" (map (p: "${p}/bin") ps);
  lowPrio = x: x;
  platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
}
