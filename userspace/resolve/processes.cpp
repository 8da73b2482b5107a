#include "resolve/processes.h"

#include <unistd.h>

#include <climits>
#include <fstream>
#include <iterator>
#include <sstream>

namespace diskwatch {

std::optional<ProcessIdentity> read_process_identity(int pid, const std::string &proc_root)
{
    const std::string dir = proc_root + "/" + std::to_string(pid);
    ProcessIdentity identity;
    {
        // The kernel ends the name with one '\n'; the name itself may hold
        // any byte but NUL, newlines included, so read it whole.
        std::ifstream comm(dir + "/comm", std::ios::binary);
        if (!comm)
            return std::nullopt;
        identity.comm.assign(std::istreambuf_iterator<char>(comm), std::istreambuf_iterator<char>());
        if (identity.comm.empty())
            return std::nullopt;
        identity.comm.pop_back();
    }
    char target[PATH_MAX];
    ssize_t length = ::readlink((dir + "/exe").c_str(), target, sizeof(target) - 1);
    if (length > 0)
        identity.exe.assign(target, static_cast<size_t>(length));
    // Read once, when the pid is first seen: the start time it had then is
    // what tells this process from a later one on the same pid (the enforcer
    // compares it once its pidfd pins the pid).
    auto started = read_process_start_boot_s(pid, proc_root);
    if (!started)
        return std::nullopt;
    identity.start_boot_s = *started;
    std::ifstream status(dir + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("Uid:", 0) == 0) {
            identity.uid = static_cast<uint32_t>(std::stoul(line.substr(4)));
            break;
        }
    }
    return identity;
}

std::optional<double> read_process_start_boot_s(int pid, const std::string &proc_root)
{
    std::ifstream stat(proc_root + "/" + std::to_string(pid) + "/stat", std::ios::binary);
    if (!stat)
        return std::nullopt;
    // Read whole: field 2 is "(comm)", and comm may hold any byte but NUL,
    // newlines and parentheses included; the fields that follow start after
    // the last ')'.
    const std::string text{std::istreambuf_iterator<char>(stat), std::istreambuf_iterator<char>()};
    const auto close = text.rfind(')');
    if (close == std::string::npos || close + 2 > text.size())
        return std::nullopt;
    std::istringstream fields(text.substr(close + 2));  // field 3 (state) on
    std::string field;
    for (int i = 3; i < 22 && fields >> field; ++i) {
    }
    unsigned long long ticks = 0;
    if (!(fields >> ticks))
        return std::nullopt;
    return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace diskwatch
