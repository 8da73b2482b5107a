# bash completion for ebpf-diskwatch
_ebpf_diskwatch()
{
    local cur prev words cword
    _init_completion || return

    local commands="doctor top agent explain check-config status release"
    local command="" i
    for ((i = 1; i < cword; i++)); do
        case "${words[i]}" in
            doctor|top|agent|explain|check-config|status|release) command="${words[i]}"; break ;;
        esac
    done

    case "$prev" in
        --config|--json-out|check-config)
            _filedir '@(yaml|yml|json|ndjson)'
            return ;;
        --json-socket|--json-socket-connect|--control-socket|--state-dir|--docker-root|--containers-storage|--containerd-state|--recorder)
            _filedir
            return ;;
        --by)
            COMPREPLY=($(compgen -W "process cgroup mount container service" -- "$cur"))
            return ;;
        --hooks)
            COMPREPLY=($(compgen -W "auto fentry tp_btf raw_tp tracepoint" -- "$cur"))
            return ;;
        --syslog)
            COMPREPLY=($(compgen -W "unix:/dev/log udp:127.0.0.1:514" -- "$cur"))
            return ;;
        -n|--iterations|-d|--delay|--metrics-listen|--metrics-cgroups|--replay|--since|--top)
            return ;;
    esac

    case "$command" in
        "")
            COMPREPLY=($(compgen -W "$commands -V --version -v --verbose -h --help" -- "$cur")) ;;
        doctor)
            COMPREPLY=($(compgen -W "--json --hooks -h --help" -- "$cur")) ;;
        status)
            COMPREPLY=($(compgen -W "--json --control-socket -h --help" -- "$cur")) ;;
        top)
            COMPREPLY=($(compgen -W "-b --batch -n --iterations -d --delay --json --by -a --accumulated --hooks --local --control-socket --docker-root --containers-storage --containerd-state --replay --recorder -h --help" -- "$cur")) ;;
        explain)
            COMPREPLY=($(compgen -W "--since --json --recorder --control-socket --top -h --help" -- "$cur"))
            [[ $cur != -* ]] && _filedir -d ;;
        agent)
            COMPREPLY=($(compgen -W "--config --dry-run --json-out --json-max-size --json-keep --state-dir --json-socket --json-socket-connect --syslog --journald --metrics-listen --metrics-cgroups --control-socket --control-group --hooks --docker-root --containers-storage --containerd-state --recorder --all-mounts -h --help" -- "$cur")) ;;
        check-config)
            _filedir '@(yaml|yml)' ;;
        release)
            COMPREPLY=($(compgen -W "--for --control-socket $(compgen -A pid)" -- "$cur")) ;;
    esac
}
complete -F _ebpf_diskwatch ebpf-diskwatch
