#!/usr/bin/env bash
# Regenerates the checked-in bpf/vmlinux/x86/vmlinux.h from a kernel's BTF.
# The build never reads the build host's BTF: CO-RE relocates field offsets
# against the running kernel at load time, so one header serves every kernel.
# Usage: scripts/gen-vmlinux.sh [BTF_FILE]   (default /sys/kernel/btf/vmlinux)
set -euo pipefail
btf=${1:-/sys/kernel/btf/vmlinux}
out=$(dirname "$0")/../bpf/vmlinux/x86/vmlinux.h
bpftool btf dump file "$btf" format c > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out from $btf ($(wc -l < "$out") lines)"
