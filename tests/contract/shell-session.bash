# assert_shell_session MACHINE_DIR: attestfs-shell driven through a host pty
# (shell-drive.py) on MACHINE_DIR, and what a user at that terminal sees.
# Shared by contract t0080 (the mock) and integration t1450 (the tiny guest).
assert_shell_session() {
	run python3 "$TOP/tests/contract/shell-drive.py" "$TOP/attestfs-shell" "$1"
	assert_success
	assert_line --regexp '^tty /dev/pts/[0-9]+$'
	assert_line 'size 33 111'
	assert_line 'jobctl on'
	assert_line 'resized 40 120'
	assert_line 'after-ctrl-c 130'
	assert_line 'shell alive'
	assert_line 'status 7'
	assert_line 'restored yes'
	# the job is gone with the shell
	run ls "$1/jobs"
	assert_output ''
}
