{
  # Not nixpkgs. attestfs's flake, given this stub with
  #   --override-input nixpkgs path:./nix/stub-nixpkgs
  # builds its outputs with the host's tools instead (nix/host.nix). The
  # builder's nix.conf brings them into the sandbox:
  #   extra-sandbox-paths = /bin /usr /lib /lib64 /dev/fuse
  #   extra-system-features = fuse
  # A copy of this directory with the tiny test guest dereferenced into
  # guests/tiny/ (cp -L: the cache links the kernel from outside the guest's
  # directory) adds the example VM tests; tests/integration/t1300-nix.bats
  # stages one.
  description = "stand-in for nixpkgs: the host's tools and test guests";

  outputs = { self }: {
    attestfsHost = {
      system = "x86_64-linux";
      shell = "/bin/bash";
      path = "/usr/bin:/bin:/usr/sbin:/sbin";
      guests =
        if builtins.pathExists ./guests/tiny/initrd.gz then ./guests else null;
    };
  };
}
