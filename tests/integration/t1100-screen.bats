#!/usr/bin/env bats
# The screen and the keyboard: screen.png at the first read, screen.txt by
# OCR, keys and type on the guest's PS/2 keyboard (the tiny guest's VGA text
# console, vgacon).

load helpers

setup_file() { mount_tiny_a; }
teardown_file() { umount_attestfs; }

@test "screen.png is a PNG of the guest's screen, taken at the read" {
	run ls "$VMS/a/"
	assert_line screen.png
	assert_line screen.txt
	assert_line keys
	assert_line type
	cp "$VMS/a/screen.png" "$BATS_TEST_TMPDIR/shot.png"
	assert_equal "$(head -c 8 "$BATS_TEST_TMPDIR/shot.png" | od -An -tx1 | tr -d ' \n')" 89504e470d0a1a0a
	# IHDR: width and height, big-endian: 720 x 400 (VGA text mode)
	assert_equal "$(od -An -tu1 -j16 -N8 "$BATS_TEST_TMPDIR/shot.png" | xargs)" '0 0 2 208 0 0 1 144'
}

@test "screen.txt reads the text on the screen" {
	tx "$VMS/a/exec" "printf '\\033[2J\\033[H\\n\\n   %s\\n' 'ATTESTFS OCR CHECK 12345' > /dev/tty0"
	run cat "$VMS/a/screen.txt"
	assert_success
	assert_output --partial 'ATTESTFS OCR CHECK 12345'
	# the NixOS driver's names in attest.sh
	run sh -c '. "$0/attest.sh" && wait_for_text a "OCR CHECK" && get_screen_text a' "$VMS"
	assert_success
	assert_output --partial 'ATTESTFS OCR CHECK 12345'
	# no helper process and no screenshot file is left behind
	run ls "$STATE/a/"
	refute_output --partial screen.
}

@test "wait screen REGEX holds once the text shows, and says which line" {
	tx "$VMS/a/exec" "printf '\\033[2J' > /dev/tty0"
	tx "$VMS/a/wait" "timeout=$TEST_TIMEOUT "'screen PROMPT [0-9]+' >"$BATS_TEST_TMPDIR/held" &
	waiter=$!
	tx "$VMS/a/exec" "printf '\\033[H\\n\\n   %s\\n' 'LOGIN PROMPT 777' > /dev/tty0"
	wait "$waiter"
	run cat "$BATS_TEST_TMPDIR/held"
	assert_output --partial 'screen '
	assert_output --partial 'LOGIN PROMPT 777'
	run tx "$VMS/a/wait" 'timeout=2 screen NEVER-ON-SCREEN'
	assert_failure
	assert_output --partial 'timed out'
	# no OCR child outlives its wait
	run pgrep -f attestfs-ocr
	assert_failure
}

@test "type and keys reach a program reading the console" {
	mkdir "$VMS/a/jobs/reader"
	# tty1 is open (its input queues) once "ready" comes
	echo 'exec 3</dev/tty1; echo ready; head -n 2 <&3' >"$VMS/a/jobs/reader/cmd"
	assert_equal "$(head -n 1 "$VMS/a/jobs/reader/stdout")" ready
	printf 'Hello, World! 42\n' >"$VMS/a/type"
	echo 'a b shift-c ret' >"$VMS/a/keys"
	assert_equal "$(cat "$VMS/a/jobs/reader/exit")" 0
	run cat "$VMS/a/jobs/reader/stdout"
	assert_output $'ready\nHello, World! 42\nabC'
}

@test "bad key names and characters are EINVAL with the reason in the log" {
	run bash -c 'echo "ctrl-nosuchkey" > "$0/a/keys"' "$VMS"
	assert_failure
	assert_output --partial 'Invalid argument'
	run grep -F "'nosuchkey' is not a key" "$VMS/a/log"
	assert_success
	run bash -c 'printf "caf\303\251" > "$0/a/type"' "$VMS"
	assert_failure
	assert_output --partial 'Invalid argument'
	run grep -F 'has no key on a US keyboard' "$VMS/a/log"
	assert_success
}

@test "a stopped machine has no screen: EHOSTDOWN" {
	echo halt >"$VMS/a/ctl"
	run cat "$VMS/a/screen.png"
	assert_failure
	run grep -F 'screen: the machine is stopped' "$VMS/a/log"
	assert_success
}
