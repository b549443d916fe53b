# nixosModules.testInstrumentation: the guest side of attestfs for NixOS
# nodes. lib.makeTest adds it to every node, beside nixpkgs' own
# test-instrumentation.nix (which every test node imports: the backdoor
# shell on hvc0, serial console, no gateway, ...), so an unchanged nixpkgs
# test node works.
#
# It adds the pool of shells: one respawning root shell on each
# virtserialport named attestfs.shell.N that attestfs gives the machine,
# opened once read-write, greeting with "Spawning backdoor root shell...",
# stderr to the serial console, as on attestfs's own guests. It starts before
# sysinit.target, so commands run while the guest still boots; a test waits
# for what it needs (wait_for_unit).
#
# Over vsock (Firecracker, Cloud Hypervisor: a virtio vsock device, virtio
# id 0x0013) it serves a root shell per connection on vsock port 1024
# (ATTESTFS_VSOCK_PORT), greeting the same way: the host dials one connection
# per shell, and again after a snapshot (the VMM resets them). Without such a
# device (QEMU) that service ends at once.
#
# nixpkgs' hvc0 backdoor stays for machines started with one shell on the
# virtconsole (shell_channel "virtconsole", as the NixOS driver does); it no
# longer waits for an hvc0 that a machine with the pool does not have.
{ config, lib, options, pkgs, ... }:
let
  cfg = config.testing.attestfs;
  # nixpkgs' test-instrumentation.nix is imported (it declares these)
  stockInstrumentation = options ? testing && options.testing ? initrdBackdoor;
  backdoor = pkgs.writeShellScript "attestfs-backdoor" ''
    # attestfs-backdoor PORT: a respawning root shell on one port
    export USER=root HOME=/root DISPLAY=:0.0 PAGER=
    if [[ -e /etc/profile ]]; then
      source /etc/profile
    fi
    export PAGER=
    cd /tmp || exit 1
    while :; do
      (
        exec 0<>"$1" 1>&0
        while ! exec 2>/dev/ttyS0; do sleep 0.1; done
        echo "Spawning backdoor root shell..."
        PS1="" exec ${pkgs.bashInteractive}/bin/bash --norc
      )
      sleep 0.05
    done
  '';
  backdoors = pkgs.writeShellScript "attestfs-backdoors" ''
    # every virtserialport named attestfs.shell.N, through sysfs (udev may
    # not have made /dev/virtio-ports/ yet this early); bounded polls
    ports= prev=x
    for _ in $(seq 250); do
      ports=
      for d in /sys/class/virtio-ports/vport*; do
        [[ -e $d/name ]] || continue
        read -r n <"$d/name" || continue
        case $n in attestfs.shell | attestfs.shell.[0-9]*) ports="$ports ''${d##*/}" ;; esac
      done
      [[ -n $ports && $ports == "$prev" ]] && break
      prev=$ports
      sleep 0.02
    done
    if [[ -z $ports ]]; then
      echo "attestfs: no attestfs.shell virtserialports, no pool" >&2
      exit 0
    fi
    for p in $ports; do
      ${backdoor} "/dev/$p" &
    done
    echo "attestfs: backdoor shells on$ports" >&2
    wait
  '';
  # one vsock connection's shell (stdin and stdout are the connection)
  vsockShell = pkgs.writeShellScript "attestfs-backdoor-vsock" ''
    export USER=root HOME=/root DISPLAY=:0.0 PAGER=
    if [[ -e /etc/profile ]]; then
      source /etc/profile
    fi
    export PAGER=
    cd /tmp || exit 1
    exec 2>/dev/ttyS0 || true
    echo "Spawning backdoor root shell..."
    PS1="" exec ${pkgs.bashInteractive}/bin/bash --norc
  '';
  vsockBackdoors = pkgs.writeShellScript "attestfs-vsock-backdoors" ''
    # only with a virtio vsock device; udev may not have loaded its
    # transport yet this early
    for d in /sys/bus/virtio/devices/virtio*; do
      id=
      [[ -r $d/device ]] && read -r id <"$d/device"
      if [[ $id == 0x0013 ]]; then
        modprobe vmw_vsock_virtio_transport 2>/dev/null
        exec ${pkgs.socat}/bin/socat VSOCK-LISTEN:1024,fork,reuseaddr \
          EXEC:${vsockShell},nofork
      fi
    done
    echo "attestfs: no vsock device, no vsock shells" >&2
  '';
in
{
  options.testing.attestfs = {
    enable = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Serve attestfs's pool of backdoor shells (attestfs.shell.N virtserialports).";
    };
  };

  config = lib.mkIf cfg.enable {
    boot.initrd.availableKernelModules = [ "virtio_console" ];

    systemd.services.attestfs-backdoor = {
      description = "attestfs backdoor shells on the attestfs.shell virtserialports";
      wantedBy = [ "sysinit.target" ];
      # systemd-tmpfiles-setup empties /tmp, where commands keep their output
      after = [ "systemd-tmpfiles-setup.service" ];
      before = [ "sysinit.target" "shutdown.target" ];
      conflicts = [ "shutdown.target" ];
      unitConfig = {
        DefaultDependencies = false;
        IgnoreOnIsolate = true;
      };
      path = [ pkgs.coreutils pkgs.bashInteractive ];
      serviceConfig = {
        ExecStart = backdoors;
        KillSignal = "SIGHUP";
        Restart = "on-failure";
        RestartSec = 1;
      };
    };

    # Firecracker, Cloud Hypervisor: a shell per vsock connection
    systemd.services.attestfs-vsock-backdoor = {
      description = "attestfs backdoor shells on vsock port 1024";
      wantedBy = [ "sysinit.target" ];
      after = [ "systemd-tmpfiles-setup.service" ];
      before = [ "sysinit.target" "shutdown.target" ];
      conflicts = [ "shutdown.target" ];
      unitConfig = {
        DefaultDependencies = false;
        IgnoreOnIsolate = true;
      };
      path = [ pkgs.coreutils pkgs.bashInteractive pkgs.kmod ];
      serviceConfig = {
        ExecStart = vsockBackdoors;
        KillSignal = "SIGHUP";
        Restart = "on-failure";
        RestartSec = 1;
      };
    };

    # nixpkgs' hvc0 shell, only where there is an hvc0
    systemd.services.backdoor = lib.mkIf stockInstrumentation {
      requires = lib.mkForce [ ];
      after = lib.mkForce [ "dev-ttyS0.device" ];
      unitConfig.ConditionPathExists = "/dev/hvc0";
    };
  };
}
