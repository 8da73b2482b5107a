#include "kernel/privileges.h"

#include <unistd.h>

#include <string>

#include "resolve/kernel_files.h"
#include "resolve/numbers.h"
#include "resolve/processes.h"

namespace diskwatch {

namespace {

constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

uint64_t effective_capabilities()
{
    // Unreadable or not hex: no capability known.
    const auto status = read_kernel_file("/proc/self/status");
    const auto caps = status.ok() ? status_value(status.text, "CapEff") : std::nullopt;
    return caps ? parse_integer<uint64_t>(*caps, 16).value_or(0) : 0;
}

}  // namespace

std::string missing_bpf_privileges()
{
    const uint64_t caps = effective_capabilities();
    const auto has = [caps](int cap) { return (caps >> cap) & 1u; };
    if (has(kCapSysAdmin) || (has(kCapBpf) && has(kCapPerfmon)))
        return {};
    return "ebpf-diskwatch must run as root (or with CAP_BPF and CAP_PERFMON) to load its BPF programs; "
           "this process (uid " +
           std::to_string(::geteuid()) + ") has neither. Run it as root (for example through sudo).";
}

}  // namespace diskwatch
