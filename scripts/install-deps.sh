#!/usr/bin/env bash
# Installs what ebpf-diskwatch needs, from Debian's packages only, on a fresh
# Debian 12 (nothing is assumed from the machine image: a minbase root is
# enough, scripts/check-fresh-machine proves it).
#
#   scripts/install-deps.sh          the build set: what building and running
#                                    the tool need (the README's first command)
#   scripts/install-deps.sh --test   the build set and the test set: everything
#                                    scripts/test, scripts/lint, scripts/fuzz,
#                                    scripts/vmtest, scripts/systemd-guest and
#                                    scripts/bench use
#                                    (scripts/test calls it)
#
# Idempotent: packages already present are not touched, and apt-get runs only
# when something is missing. Recommends are never installed, so every package
# a script or test uses must be named here.
set -euo pipefail

with_tests=false
case "${1:-}" in
  "") ;;
  --test) with_tests=true ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
  *) echo "install-deps: unknown argument $1 (usage: $0 [--test])" >&2; exit 2 ;;
esac

build_packages=(
  # compilers and build tools; clang compiles the BPF programs (-target bpf)
  # and bpftool generates their skeletons
  cmake make g++ pkg-config clang bpftool
  # libraries
  libbpf-dev libelf-dev zlib1g-dev
  libspdlog-dev libcli11-dev nlohmann-json3-dev libyaml-cpp-dev libcpp-httplib-dev libncurses-dev
  # sd_notify (readiness, watchdog) under the systemd unit
  libsystemd-dev
)

test_packages=(
  # the test suites: Catch2, the io_uring writer (dw-test-writer), loop-mounted
  # ext4 and xfs scratch disks (mkfs.*, losetup), top's interactive tests in tmux
  catch2 liburing-dev e2fsprogs xfsprogs util-linux mount tmux
  # scripts/fuzz: libFuzzer and clang's ASan/UBSan runtimes (clang without
  # recommends has none of them); llvm-symbolizer for readable sanitizer reports
  libclang-rt-14-dev llvm
  # static analysis for scripts/lint (docs/security.md): both run in CI;
  # run-clang-tidy is a python3 script
  cppcheck clang-tidy python3
  # tests of the ecosystem, with the real clients: socat (event-socket
  # subscriber and listening shipper), rsyslog (rsyslogd parses our RFC 5424),
  # prometheus (promtool checks /metrics, the alert rules and scrape config),
  # systemd (systemd-analyze verifies the unit), dpkg-dev (dpkg-shlibdeps for
  # the .deb's Depends) and file (CPack's DEB generator runs it on every
  # installed file). Their services are not used: tests start private ones.
  socat rsyslog prometheus systemd dpkg-dev file
  # scripts/vmtest, the kernel matrix: boots Debian's 6.1 and 6.12 kernels
  # (where fentry attaches, unlike here) under qemu from a busybox initramfs
  # packed with cpio, reads the guest's doctor and top JSON with jq, and
  # decompresses 6.12's loop.ko.xz with xz
  qemu-system-x86 busybox-static cpio jq xz-utils
  # benchmark (scripts/bench, a python3 script; CTest bench_smoke): bpftrace is
  # the baseline every figure is compared with
  bpftrace
  # tests being added: strace (fault injection), stress-ng (load tests)
  strace stress-ng
  # the Docker tests (tests/integration/test_docker.cpp): each test starts its
  # own dockerd (own data root on a loop ext4, own socket), never the
  # machine's; images are imported from busybox-static, never pulled.
  # docker.io brings runc and containerd.
  docker.io docker-compose
  # the containerd tests (tests/integration/test_containerd.cpp): each starts
  # its own containerd (own root, state and socket, CRI plugin off) and runs
  # containers with ctr from a busybox-static root; named here, not left to
  # docker.io's dependencies. runc is containerd-shim-runc-v2's runtime.
  containerd runc
  # scripts/check-fresh-machine (CTest label fresh-machine) makes a fresh
  # Debian root with debootstrap when shared/tools/fresh-chroot is not beside
  # the clone; scripts/systemd-guest makes its guest's root with it (and boots
  # it with qemu-system-x86 and cpio, above)
  debootstrap
)

packages=("${build_packages[@]}")
if $with_tests; then
  packages+=("${test_packages[@]}")
fi

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
  echo "install-deps: missing ${missing[*]}; run as root (sudo $0${1:+ $1})" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt (unattended upgrades, a parallel job) instead of failing.
apt_options=(-o DPkg::Lock::Timeout=600)
apt-get "${apt_options[@]}" update -qq
apt-get "${apt_options[@]}" install -y -qq --no-install-recommends "${missing[@]}"
