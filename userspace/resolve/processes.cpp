#include "resolve/processes.h"

#include <unistd.h>

#include <climits>
#include <fstream>

namespace diskwatch {

std::optional<ProcessIdentity> read_process_identity(int pid, const std::string &proc_root)
{
    const std::string dir = proc_root + "/" + std::to_string(pid);
    ProcessIdentity identity;
    {
        std::ifstream comm(dir + "/comm");
        if (!comm || !std::getline(comm, identity.comm))
            return std::nullopt;
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
