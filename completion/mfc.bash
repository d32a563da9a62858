# bash completion for mfc(8), the CLI of mfc_daemon.            -*- shell-script -*-
#
# Install as /usr/share/bash-completion/completions/mfc, or source it from ~/.bashrc.
# Follows the grammar of src/cli/grammar.ts (COMMANDS) and the options of src/cli/globals.ts;
# test/unit/completion.test.ts checks that every command and keyword there appears here.
# Needs only bash: it does not use the bash-completion package's helpers.

# Interface names: /sys/class/net, or `ip -o link show` where sysfs is not available.
# MFC_COMPLETION_SYSFS_NET replaces /sys/class/net (used by the tests).
_mfc_interfaces() {
    local dir=${MFC_COMPLETION_SYSFS_NET:-/sys/class/net} name found=''
    if [[ -d $dir ]]; then
        for name in "$dir"/*; do
            [[ -e $name ]] || continue
            printf '%s\n' "${name##*/}"
            found=1
        done
    fi
    [[ -n $found ]] && return 0
    # "3: eth0@if4: <BROADCAST,...> ..." -> eth0
    command -v ip >/dev/null 2>&1 || return 0
    local _num rest
    while read -r _num name rest; do
        name=${name%:}
        name=${name%%@*}
        [[ -n $name ]] && printf '%s\n' "$name"
    done < <(ip -o link show 2>/dev/null)
}

# Instance names: the NAME of every /etc/mfc_daemon.d/NAME.conf (mfc -i NAME).
# MFC_COMPLETION_INSTANCE_DIR replaces /etc/mfc_daemon.d (used by the tests).
_mfc_instances() {
    local dir=${MFC_COMPLETION_INSTANCE_DIR:-/etc/mfc_daemon.d} f name list=
    for f in "$dir"/*.conf; do
        [[ -f $f ]] || continue
        name=${f##*/}
        list+="${name%.conf} "
    done
    _mfc_words "$list"
}

# COMPREPLY += the words of $1 that start with $cur.
_mfc_words() {
    local IFS=$' \t\n'
    mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -W "$1" -- "$cur")
}

# COMPREPLY += the file names that start with $cur.
_mfc_files() {
    compopt -o filenames 2>/dev/null
    mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur")
}

_mfc_ifnames() {
    local skip=" $1 " names name list=
    names=$(_mfc_interfaces)
    for name in $names; do
        [[ $skip == *" $name "* ]] || list+="$name "
    done
    _mfc_words "$list"
}

# Whether $1 is a long global option that takes a value.
_mfc_valued() {
    case $1 in
        --output|--socket|--config|--instance) return 0 ;;
    esac
    return 1
}

_mfc() {
    COMPREPLY=()
    local cword=$COMP_CWORD
    local cur=${COMP_WORDS[cword]} prev=${COMP_WORDS[cword-1]:-}
    local globals="-4 -6 -n --dry-run -v --verbose -o --output -j --json -s --socket -c --config -i --instance -h --help -V --version"
    local commands="add replace del show vif flush batch apply join leave import status check help"

    # --output=VALUE: readline may split it at '=' (COMP_WORDBREAKS), or not.
    if [[ $cur == "=" ]] && _mfc_valued "$prev"; then
        cur=
    elif [[ $prev == "=" ]] && (( cword >= 2 )) && _mfc_valued "${COMP_WORDS[cword-2]}"; then
        prev=${COMP_WORDS[cword-2]}
    elif [[ $cur == --*=* ]] && _mfc_valued "${cur%%=*}"; then
        prev=${cur%%=*}
        cur=${cur#*=}
    fi

    # The value of a global option.
    case $prev in
        -o|--output) _mfc_words "text json"; return 0 ;;
        -s|--socket|-c|--config) _mfc_files; return 0 ;;
        -i|--instance) _mfc_instances; return 0 ;;
    esac

    # The command words so far, without global options and their values (they may come anywhere).
    local -a words=()
    local i=1 w
    while (( i < cword )); do
        w=${COMP_WORDS[i]}
        case $w in
            -o|--output|-s|--socket|-c|--config|-i|--instance)
                if [[ ${COMP_WORDS[i+1]:-} == "=" ]]; then (( i += 3 )); else (( i += 2 )); fi
                continue ;;
            -) ;;                       # stdin for batch/apply: a word
            -*) (( i++ )); continue ;;
        esac
        words+=("$w")
        (( i++ ))
    done

    local n=${#words[@]}
    if [[ $cur == -* ]]; then
        # A lone "-" after batch/apply/import smcroute is standard input; anything else starting with - is an option.
        if [[ $cur == "-" ]] && { { (( n == 1 )) && [[ ${words[0]} == batch || ${words[0]} == apply ]]; } ||
            { (( n == 2 )) && [[ ${words[0]} == import ]]; }; }; then
            _mfc_words "-"
        else
            _mfc_words "$globals"
        fi
        return 0
    fi

    if (( n == 0 )); then
        _mfc_words "$commands"
        return 0
    fi

    case ${words[0]} in
        add|replace)
            # [source|from S] group|to G iif IF oif IF [ttl N] [IF [ttl N]...]
            local have_source='' have_group='' have_iif='' have_oif='' mode='' expect='' last_if='' iif='' oifs=''
            for (( i = 1; i < n; i++ )); do
                w=${words[i]}
                if [[ -n $expect ]]; then
                    if [[ $expect == iif ]]; then iif=$w; fi
                    expect=
                    continue
                fi
                case $w in
                    source|from) have_source=1; expect=value; mode=; last_if= ;;
                    group|to) have_group=1; expect=value; mode=; last_if= ;;
                    iif) have_iif=1; expect=iif; mode=; last_if= ;;
                    oif) have_oif=1; mode=oif; last_if= ;;
                    ttl) if [[ $mode == oif ]]; then expect=value; fi; last_if= ;;
                    *) if [[ $mode == oif ]]; then oifs+="$w "; last_if=1; fi ;;
                esac
            done
            # words[n-1] is the word before the cursor: is a value expected here?
            case $expect in
                iif) _mfc_ifnames "$oifs"; return 0 ;;
                value) return 0 ;;
            esac
            local more=
            [[ -z $have_source ]] && more+="source from "
            [[ -z $have_group ]] && more+="group to "
            [[ -z $have_iif ]] && more+="iif "
            if [[ $mode == oif ]]; then
                [[ -n $last_if ]] && more+="ttl "
                _mfc_ifnames "$iif $oifs"
            elif [[ -z $have_oif ]]; then
                more+="oif "
            fi
            _mfc_words "$more"
            ;;
        del|check)
            # [source|from S] group|to G
            case $prev in
                source|from|group|to) return 0 ;;
            esac
            local more=
            [[ " ${words[*]} " == *" source "* || " ${words[*]} " == *" from "* ]] || more+="source from "
            [[ " ${words[*]} " == *" group "* || " ${words[*]} " == *" to "* ]] || more+="group to "
            _mfc_words "$more"
            ;;
        show)
            (( n == 1 )) && _mfc_words "routes vifs joins stats"
            ;;
        join|leave)
            # dev IF group G [source S]
            case $prev in
                dev) _mfc_ifnames ""; return 0 ;;
                group|source) return 0 ;;
            esac
            local more=
            [[ " ${words[*]:1} " == *" dev "* ]] || more+="dev "
            [[ " ${words[*]:1} " == *" group "* ]] || more+="group "
            [[ " ${words[*]:1} " == *" source "* ]] || more+="source "
            _mfc_words "$more"
            ;;
        import)
            # import smcroute FILE|-
            if (( n == 1 )); then
                _mfc_words "smcroute"
            elif (( n == 2 )) && [[ ${words[1]} == smcroute ]]; then
                _mfc_words "-"
                _mfc_files
            fi
            ;;
        vif)
            if (( n == 1 )); then
                _mfc_words "add del show"
                return 0
            fi
            case ${words[1]} in
                add|del)
                    case $prev in
                        dev) _mfc_ifnames ""; return 0 ;;
                        threshold) return 0 ;;
                    esac
                    local more=
                    [[ " ${words[*]:2} " == *" dev "* ]] || more+="dev "
                    [[ ${words[1]} == add && " ${words[*]:2} " != *" threshold "* ]] && more+="threshold "
                    _mfc_words "$more"
                    ;;
            esac
            ;;
        batch|apply)
            if (( n == 1 )); then
                _mfc_words "-"
                _mfc_files
            fi
            ;;
        help)
            if (( n == 1 )); then
                _mfc_words "${commands% help}"
            elif (( n == 2 )) && [[ ${words[1]} == vif ]]; then
                _mfc_words "add del show"
            elif (( n == 2 )) && [[ ${words[1]} == import ]]; then
                _mfc_words "smcroute"
            fi
            ;;
        flush|status) ;;
    esac
    return 0
}

complete -F _mfc mfc
