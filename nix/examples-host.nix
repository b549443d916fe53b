# The examples as VM tests on the tiny test guest (the host flavour: the
# guest comes from the stub's guests/), and a test that fails on purpose.
{ makeTest, runNixOSTest, guests }:
let
  tiny = extra: {
    kernel = "${guests}/tiny/vmlinuz";
    initrd = "${guests}/tiny/initrd.gz";
    append = "console=ttyS0 quiet panic=-1 lsm=capability cgroup_disable=memory";
    memory_mib = 256;
  } // extra;
in
{
  checks = {
    hello = makeTest {
      name = "hello";
      timeout = 120;
      machines.hello = tiny { };
      testScript = ../examples/hello/test.sh;
    };
    web-db = makeTest {
      name = "web-db";
      timeout = 120;
      machines = {
        client = tiny { vlans = [ 1 ]; };
        web = tiny { vlans = [ 1 2 ]; };
        db = tiny { vlans = [ 2 ]; };
      };
      testScript = ../examples/web-db/test.sh;
    };
  } // (if !builtins.pathExists ../python/bin/attestfs-test-driver then { } else {
    # examples/hello as an existing NixOS test would say it (Python; with
    # the Python driver in the source only)
    hello-python = runNixOSTest {
      name = "hello-python";
      timeout = 120;
      machines.hello = tiny { };
      testScript = ''
        start_all()
        with subtest("run a command and check its output"):
            t.assertIn("Linux", hello.succeed("uname -s"))
            hello.wait_for_file("/proc/uptime")
            print(hello.succeed("uname -a"))
      '';
    };
  }) // {
    snapshots = makeTest {
      name = "snapshots";
      timeout = 120;
      machines.base = tiny { };
      testScript = ../examples/snapshots/test.sh;
    };
  };

  # Must fail to build: tests/integration/t1300-nix.bats checks that it
  # does, and why.
  selfTests.failing = makeTest {
    name = "failing";
    timeout = 120;
    machines.hello = tiny { };
    testScript = ''
      set -eu
      . "$VMS/attest.sh"
      echo start > "$VMS/hello/ctl"
      succeed hello 'echo "the guest answers: $(uname -s)"'
      echo "a command that fails on purpose:"
      succeed hello 'exit 3'
      echo "not reached"
    '';
  };
  # Must fail before any machine boots.
  selfTests.syntaxError = makeTest {
    name = "syntax-error";
    machines.hello = tiny { };
    testScript = "if then fi";
  };
}
