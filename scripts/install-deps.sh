#!/usr/bin/env bash
# Installs everything ebpf-diskwatch needs to build and test, from Debian's
# packages only. Idempotent: packages already present are not touched, and
# apt-get runs only when something is missing.
set -euo pipefail

packages=(
  # build
  cmake make g++ pkg-config clang llvm
  libbpf-dev bpftool libelf-dev zlib1g-dev
  libspdlog-dev libcli11-dev nlohmann-json3-dev libyaml-cpp-dev libcpp-httplib-dev libncurses-dev
  # tests
  catch2 e2fsprogs xfsprogs util-linux tmux liburing-dev
  # static analysis for scripts/lint (docs/security.md): both run in CI
  cppcheck clang-tidy
  # tests of the ecosystem, with the real clients: socat (event-socket
  # subscriber and listening shipper), rsyslog (rsyslogd parses our RFC 5424),
  # prometheus (promtool checks /metrics, the alert rules and scrape config),
  # systemd (systemd-analyze verifies the unit), dpkg-dev (dpkg-shlibdeps for
  # the .deb's Depends). Their services are not used: tests start private ones.
  socat rsyslog prometheus systemd dpkg-dev
  # scripts/vmtest, the kernel matrix: boots Debian's 6.1 kernel (where fentry
  # attaches, unlike here) under qemu from a busybox initramfs packed with
  # cpio, and reads the guest's doctor and top JSON with jq
  qemu-system-x86 busybox-static cpio jq
  # benchmark (scripts/bench): bpftrace is the baseline every figure is
  # compared with (its one-liner on sys_exit_pwrite64, measured side by side)
  bpftrace
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing ${missing[*]}; run as root (sudo $0)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt (unattended upgrades, a parallel job) instead of failing.
apt_options=(-o DPkg::Lock::Timeout=600)
apt-get "${apt_options[@]}" update -qq
apt-get "${apt_options[@]}" install -y -qq --no-install-recommends "${missing[@]}"
