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
  fileContents = p:
    let s = builtins.readFile p; n = builtins.stringLength s; in
    if n > 0 && builtins.substring (n - 1) 1 s == "\n" then builtins.substring 0 (n - 1) s else s;
  platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
}
