"""The public names this package follows, as data (checked by
tests/python/test_names.py).

PINNED_MACHINE_METHODS: every public method of QemuMachine (with those it
inherits from BaseMachine) in nixpkgs
nixos/lib/test-driver/src/test_driver/machine/__init__.py at commit
019697db058b6738eda0cb2cdcc9f5c014c914cb. PINNED_SYMBOLS: the keys of
Driver.test_symbols()'s general symbols in
nixos/lib/test-driver/src/test_driver/driver.py at commit
003d58163f469fbeb0d51e4ef8d46af622759627. ISSUE_NAMES: the list in
attestfs's issue 14.
"""

PINNED_MACHINE_METHODS = (
    # BaseMachine
    "log", "log_serial", "nested", "is_up", "start", "wait_for_shutdown",
    "systemctl", "wait_for_unit", "get_unit_info", "get_unit_property",
    "require_unit_state", "succeed", "fail", "wait_until_succeeds",
    "wait_until_fails", "sleep", "wait_for_file", "wait_for_open_port",
    "wait_for_open_unix_socket", "wait_for_closed_port", "start_job",
    "stop_job", "execute", "run_callbacks", "cleanup_statedir",
    "copy_from_machine", "copy_from_vm", "copy_from_host_via_shell",
    "copy_from_host",
    # QemuMachine
    "ssh_backdoor_command", "wait_for_monitor_prompt", "send_monitor_command",
    "get_tty_text", "wait_until_tty_matches", "dump_tty_contents",
    "shell_interact", "console_interact", "wait_for_qmp_event", "send_chars",
    "connect", "screenshot", "get_screen_text_variants", "get_screen_text",
    "wait_for_text", "wait_for_console_text", "get_console_log", "send_key",
    "send_console", "shutdown", "crash", "reboot", "wait_for_x",
    "get_window_names", "wait_for_window", "forward_port", "block", "unblock",
    "release", "switch_root",
)

PINNED_SYMBOLS = (
    "start_all", "test_script", "machines_qemu", "machines_nspawn", "vlans",
    "driver", "log", "os", "create_machine", "subtest", "run_tests",
    "join_all", "retry", "serial_stdout_off", "serial_stdout_on",
    "polling_condition", "BaseMachine", "t", "debug",
)

ISSUE_SYMBOLS = (
    "start_all", "join_all", "subtest", "retry", "polling_condition", "t",
    "serial_stdout_on", "serial_stdout_off",
)

ISSUE_MACHINE_METHODS = (
    "start", "shutdown", "crash", "reboot", "execute", "succeed", "fail",
    "wait_until_succeeds", "wait_until_fails", "wait_for_unit",
    "wait_for_open_port", "wait_for_closed_port", "wait_for_open_unix_socket",
    "wait_for_file", "wait_for_console_text", "wait_for_text",
    "wait_for_window", "get_screen_text", "screenshot", "send_key",
    "send_chars", "send_console", "systemctl", "get_unit_info",
    "get_unit_property", "require_unit_state", "start_job", "stop_job",
    "copy_from_host", "copy_from_host_via_shell", "copy_from_vm",
    "copy_from_machine", "block", "unblock", "forward_port", "sleep",
    "get_tty_text", "wait_until_tty_matches", "dump_tty_contents",
    "get_console_log", "wait_for_shutdown", "is_up", "wait_for_x",
    "get_window_names", "send_monitor_command", "wait_for_qmp_event",
    "console_interact", "shell_interact",
)

# Keyword arguments and their defaults that scripts rely on.
PINNED_DEFAULTS = {
    "execute": {"check_return": True, "check_output": True, "timeout": 900},
    "succeed": {"timeout": None},
    "fail": {"timeout": None},
    "wait_until_succeeds": {"timeout": 900},
    "wait_until_fails": {"timeout": 900},
    "wait_for_unit": {"user": None, "timeout": 900},
    "wait_for_file": {"timeout": 900},
    "wait_for_open_port": {"addr": "localhost", "timeout": 900},
    "wait_for_closed_port": {"addr": "localhost", "timeout": 900},
    "wait_for_open_unix_socket": {"is_datagram": False, "timeout": 900},
    "wait_for_console_text": {"timeout": None},
    "wait_for_text": {"timeout": 900},
    "wait_for_window": {"timeout": 900},
    "wait_for_x": {"timeout": 900},
    "wait_until_tty_matches": {"timeout": 900},
    "wait_for_qmp_event": {"timeout": 600},
    "require_unit_state": {"require_state": "active"},
    "forward_port": {"host_port": 8080, "guest_port": 80},
    "send_key": {"delay": 0.01, "log": True},
    "send_chars": {"delay": 0.01},
    "start": {"allow_reboot": False},
    "copy_from_machine": {"target_dir": ""},
}

ATTESTFS_EXTRAS = ("snapshot", "restore", "clone")
