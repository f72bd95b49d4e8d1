#!/usr/bin/env bash
# `scripts/with-kvm -- kairos run` from a terminal (issue 11, "The console"),
# driven through tmux as a user's hands would be (send-keys, capture-pane):
#   1. the command gets a terminal inside the emulated machine, of the
#      caller's size, and later sizes when the window is resized;
#   2. keys typed reach the guest's shell, and its output comes back;
#   3. Ctrl-C interrupts the guest's foreground program, not kairos or the
#      emulated machine (kairos runs the terminal raw, as QEMU -nographic);
#   4. Ctrl-A x quits kairos with its own stop line, exit 0, and the
#      caller's terminal is back in its normal (canonical) mode.
source "$(dirname "$0")/lib.sh"
require_kvm
if ! command -v tmux >/dev/null; then
	echo "SKIPPED: $TEST_NAME needs tmux (scripts/build installs it)" >&2
	exit 77
fi

write_config shell.json 1 256 "$BASE_CMDLINE kairos.init=shell"

# Its own tmux server (socket in the work directory): nothing of a user's
# tmux is touched, and the server goes with the test.
socket=$WORK/tmux.sock
tmux_() { tmux -S "$socket" "$@"; }
# By its pid: finish removes the work directory, socket included.
server_pid=
stop_server() {
	[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
	server_pid=
}
trap stop_server EXIT
screen() { tmux_ capture-pane -p -J -t terminal -S -300 2>/dev/null || true; }
# wait_for REGEX SECONDS: until a line of the pane matches.
wait_for() {
	local tries=$(($2 * 2))
	while ((tries-- > 0)); do
		screen | grep -qE -- "$1" && return 0
		sleep 0.5
	done
	return 1
}
# expect_screen REGEX SECONDS WHAT
expect_screen() {
	if wait_for "$1" "$2"; then pass "$3"; else fail "$3: no line matching '$1' on the screen"; fi
}

cat >inside.sh <<'SCRIPT'
#!/bin/sh
# Inside the emulated machine, on the terminal with-kvm gave it.
tty=no
[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && tty=yes
echo "inside-size=$(stty size) inside-tty=$tty"
# Reports a change of this terminal's size (the pane resized outside): in
# the background, beside kairos, for at most 10 minutes. \r: kairos runs
# the terminal raw.
(
	last=$(stty size)
	for _ in $(seq 1200); do
		sleep 0.5
		now=$(stty size 2>/dev/null) || exit 0
		[ "$now" = "$last" ] && continue
		printf '\r\ninside-resized=%s\r\n' "$now"
		last=$now
	done
) </dev/tty & # an asynchronous list's stdin is /dev/null otherwise
exec "$1" run shell.json --stats stats.json
SCRIPT
chmod +x inside.sh
# The pane's command: with-kvm, then what the terminal looks like after.
cat >pane.sh <<SCRIPT
#!/bin/bash
cd "$WORK" || exit 1
# A guest that triple-faults in early boot (the emulated machine's known
# flake, README) is booted again, as run_guest's are; with-kvm's own
# --retry-triple-fault would buffer the output, and this one is live.
for attempt in 1 2 3; do
	rc=0
	"$WITH_KVM" --timeout 400 -- ./inside.sh "$KAIROS_BIN" || rc=\$?
	[ "\$rc" = 4 ] || break
	echo "INFRA: attempt \$attempt: the guest triple-faulted"
done
echo "with-kvm-exit=\$rc"
stty -a | grep -qw icanon && echo "after: canonical" || echo "after: raw"
sleep 600
SCRIPT
chmod +x pane.sh
tmux_ -f /dev/null new-session -d -s terminal -x 100 -y 30 ./pane.sh
server_pid=$(tmux_ display-message -p '#{pid}')

expect_screen '^inside-size=30 100 inside-tty=yes' 240 "the command has a 30x100 terminal inside"
if wait_for 'KAIROS-GUEST shell-ready' 300 && wait_for '# *$' 60; then
	pass "the guest's shell is up"
else
	fail "no guest shell prompt"
fi
# The guest's shell does the arithmetic: its answer is not in the echo.
# shellcheck disable=SC2016
tmux_ send-keys -t terminal 'echo typed-$((6 * 7))' Enter
expect_screen '^typed-42' 60 "typed keys reach the guest, its output comes back"

# A window resize reaches the terminal inside the emulated machine.
tmux_ resize-window -t terminal -x 120 -y 40
expect_screen '^inside-resized=40 120' 30 "a window resize outside reaches the terminal inside (40x120)"

tmux_ send-keys -t terminal 'sleep 300; echo slept' Enter
sleep 3
tmux_ send-keys -t terminal C-c
sleep 2
# shellcheck disable=SC2016
tmux_ send-keys -t terminal 'echo after-$((40 + 2))' Enter
expect_screen '^after-42' 60 "Ctrl-C interrupted the guest's sleep, and kairos runs on"
if screen | grep -q '^slept'; then fail "the guest's sleep ran to its end"; fi

tmux_ send-keys -t terminal C-a x
expect_screen 'quit by the user: Ctrl-A x on the console' 60 "Ctrl-A x quits kairos with its stop line"
expect_screen '^with-kvm-exit=0$' 60 "kairos and with-kvm exit 0"
expect_screen '^after: canonical$' 30 "the terminal is back in canonical mode"
expect_confined shell.json

screen >out.txt # the evidence, for finish
stop_server      # and with it the pane's shell
finish
