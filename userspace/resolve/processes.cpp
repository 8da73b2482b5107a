#include "resolve/processes.h"

#include <unistd.h>

#include <climits>
#include <fstream>
#include <iterator>

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

}  // namespace diskwatch
