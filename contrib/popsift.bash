# bash completion for popsift(1).
# Installed by `make install` as $(PREFIX)/share/bash-completion/completions/popsift;
# from the source tree: `source contrib/popsift.bash`.
#
# Account names come from the `account NAME` lines of the config (-f FILE
# on the command line, else $XDG_CONFIG_HOME/popsift/config), read by bash
# itself: completing never runs popsift or a password_command.
# shellcheck shell=bash disable=SC2207

_popsift_config()
{
	local i
	for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
		if [[ ${COMP_WORDS[i]} == -f ]]; then
			local f=${COMP_WORDS[i + 1]}
			[[ $f == \~/* ]] && f=$HOME/${f#\~/}
			printf '%s\n' "$f"
			return
		fi
	done
	printf '%s\n' "${XDG_CONFIG_HOME:-$HOME/.config}/popsift/config"
}

_popsift_accounts()
{
	local conf key name rest
	conf=$(_popsift_config)
	[[ -r $conf && -f $conf ]] || return
	while read -r key name rest; do
		[[ $key == account && -n $name ]] && printf '%s\n' "$name"
	done <"$conf"
}

# file (-f) or directory (-d) names, quoted as such
_popsift_files()
{
	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen "$1" -- "$cur"))
}

_popsift()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local commands="run daemon check new filter status log import providers authorize help"
	local global="-f -v -vv -q --help --version"
	COMPREPLY=()

	case $prev in
	-f | -r | --mbox)
		_popsift_files -f
		return
		;;
	--maildir)
		_popsift_files -d
		return
		;;
	--account)
		COMPREPLY=($(compgen -W "$(_popsift_accounts)" -- "$cur"))
		return
		;;
	--since)
		COMPREPLY=($(compgen -W "1h 1d 2d 7d 30d" -- "$cur"))
		return
		;;
	--deliver | --shard)
		return
		;;
	esac

	# the subcommand: the first word that is neither an option nor an
	# option's argument; ncmd counts the words after it
	local i cmd="" ncmd=0
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-f | -r | --since | --account | --deliver | --mbox | --maildir | --shard) ((i++)) ;;
		-*) ;;
		*)
			if [[ -z $cmd ]]; then
				cmd=${COMP_WORDS[i]}
			else
				((ncmd++))
			fi
			;;
		esac
	done

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$global" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		fi
		return
	fi

	local opts="" words=""
	case $cmd in
	run)
		opts="--all --dry-run -n --json --shard"
		words=$(_popsift_accounts)
		;;
	new)
		opts="--json"
		words=$(_popsift_accounts)
		;;
	check) opts="-v" ;;
	daemon) ;;
	status)
		opts="--json"
		((ncmd == 0)) && words=$(_popsift_accounts)
		;;
	log)
		opts="--since --json"
		((ncmd == 0)) && words=$(_popsift_accounts)
		;;
	authorize)
		((ncmd == 0)) && words=$(_popsift_accounts)
		;;
	providers)
		((ncmd == 0)) && words="gmail outlook office365 yahoo icloud 163 126 yeah qq sina sohu aliyun"
		;;
	help)
		((ncmd == 0)) && words=$commands
		;;
	import)
		opts="--dry-run -n"
		case $ncmd in
		0) words="fetchmailrc mpoprc getmailrc fetchids mpop-uidls getmail-oldmail" ;;
		1)
			_popsift_files -f
			return
			;;
		2) words=$(_popsift_accounts) ;;
		esac
		;;
	filter)
		opts="-r --dry-run -n --account --deliver --mbox --maildir"
		if [[ $cur != -* ]]; then
			_popsift_files -f
			return
		fi
		;;
	*) return ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	else
		COMPREPLY=($(compgen -W "$words" -- "$cur"))
	fi
}

complete -F _popsift popsift
