# bash completion for kairos (installed as
# share/bash-completion/completions/kairos): commands, their options, and
# JSON configs for the CONFIG argument.
# shellcheck shell=bash
_kairos() {
	local current=${COMP_WORDS[COMP_CWORD]} previous=${COMP_WORDS[COMP_CWORD - 1]}
	if [ "$COMP_CWORD" -eq 1 ]; then
		mapfile -t COMPREPLY < <(compgen -W "run check version --help --version -V" -- "$current")
		return
	fi
	case "$previous" in
	--stats)
		mapfile -t COMPREPLY < <(compgen -f -- "$current")
		return
		;;
	esac
	case "${COMP_WORDS[1]}" in
	run | check)
		if [[ "$current" == -* ]]; then
			local options="--help --version"
			[ "${COMP_WORDS[1]}" = run ] && options="--stats $options"
			mapfile -t COMPREPLY < <(compgen -W "$options" -- "$current")
		else
			mapfile -t COMPREPLY < <(compgen -f -X '!*.json' -- "$current"; compgen -d -- "$current")
		fi
		;;
	esac
}
complete -o filenames -F _kairos kairos
