#include "cli/privileges.h"

#include <unistd.h>

#include <fstream>
#include <string>

namespace diskwatch {

namespace {

constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

uint64_t effective_capabilities()
{
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("CapEff:", 0) == 0)
            return std::stoull(line.substr(7), nullptr, 16);
    return 0;
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
