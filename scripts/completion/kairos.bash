# bash completion for kairos (installed as
# share/bash-completion/completions/kairos): commands, their options, the
# values of --log-level, files after --kernel, --initrd, --stats, --events
# and --api-sock, JSON configs for the CONFIG argument, and ctl's socket
# and commands.
# shellcheck shell=bash
_kairos() {
	local current=${COMP_WORDS[COMP_CWORD]} previous=${COMP_WORDS[COMP_CWORD - 1]}
	if [ "$COMP_CWORD" -eq 1 ]; then
		mapfile -t COMPREPLY < <(compgen -W "run check ctl version --help --version -V" -- "$current")
		return
	fi
	case "$previous" in
	--kernel | --initrd | --stats | --events | --api-sock)
		mapfile -t COMPREPLY < <(compgen -f -- "$current")
		return
		;;
	--log-level)
		mapfile -t COMPREPLY < <(compgen -W "error warn info debug" -- "$current")
		return
		;;
	--cpus | --memory | --append)
		COMPREPLY=()  # a number or a command line: nothing to offer
		return
		;;
	esac
	case "${COMP_WORDS[1]}" in
	run | check)
		if [[ "$current" == -* ]]; then
			local options="--kernel --initrd --append --cpus --memory --log-level --help --version"
			[ "${COMP_WORDS[1]}" = run ] && options="--stats --events --api-sock $options"
			mapfile -t COMPREPLY < <(compgen -W "$options" -- "$current")
		else
			mapfile -t COMPREPLY < <(compgen -f -X '!*.json' -- "$current"; compgen -d -- "$current")
		fi
		;;
	ctl)
		if [ "$COMP_CWORD" -eq 2 ]; then
			mapfile -t COMPREPLY < <(compgen -f -- "$current")
		elif [ "$COMP_CWORD" -eq 3 ]; then
			mapfile -t COMPREPLY < <(compgen -W "status stats pause resume shutdown quit reset raise-event --help" \
				-- "$current")
		else
			COMPREPLY=()
		fi
		;;
	esac
}
complete -o filenames -F _kairos kairos
