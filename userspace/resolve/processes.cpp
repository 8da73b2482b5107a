#include "resolve/processes.h"

#include <unistd.h>

#include <algorithm>
#include <climits>

#include "resolve/kernel_files.h"
#include "resolve/numbers.h"

namespace diskwatch {

std::optional<std::string_view> status_value(std::string_view status, std::string_view key)
{
    size_t pos = 0;
    while (pos < status.size()) {
        const size_t end = std::min(status.find('\n', pos), status.size());
        std::string_view line = status.substr(pos, end - pos);
        pos = end + 1;
        if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ':')
            continue;
        line.remove_prefix(key.size() + 1);
        while (!line.empty() && (line.front() == '\t' || line.front() == ' '))
            line.remove_prefix(1);
        return line;
    }
    return std::nullopt;
}

std::optional<ProcessIdentity> read_process_identity(int pid, const std::string &proc_root)
{
    const std::string dir = proc_root + "/" + std::to_string(pid);
    ProcessIdentity identity;
    // The kernel ends the name with one '\n'; the name itself may hold any
    // byte but NUL, newlines included, so read it whole.
    auto comm = read_kernel_file(dir + "/comm");
    if (!comm.ok() || comm.text.empty() || comm.text.back() != '\n')
        return std::nullopt;
    comm.text.pop_back();
    identity.comm = std::move(comm.text);
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
    // Without its owner the process is unknown: uid 0 would say root.
    const auto status = read_kernel_file(dir + "/status");
    const auto uid_line = status.ok() ? status_value(status.text, "Uid") : std::nullopt;  // real, effective, ...
    const auto uid = uid_line ? parse_integer<uint32_t>(uid_line->substr(0, uid_line->find('\t'))) : std::nullopt;
    if (!uid)
        return std::nullopt;
    identity.uid = *uid;
    return identity;
}

std::optional<std::string_view> ProcessStat::field(size_t n) const
{
    if (n < 3 || n - 3 >= fields.size())
        return std::nullopt;
    return fields[n - 3];
}

std::optional<unsigned long long> ProcessStat::number(size_t n) const
{
    const auto text = field(n);
    return text ? parse_integer<unsigned long long>(*text) : std::nullopt;
}

std::optional<ProcessStat> read_process_stat(const std::string &pid_dir)
{
    const auto stat = read_kernel_file(pid_dir + "/stat");
    if (!stat.ok())
        return std::nullopt;
    // The kernel ends the line with '\n': without it the text was cut short,
    // and its last number may be cut too.
    const auto close = stat.text.rfind(')');
    if (close == std::string::npos || close + 2 > stat.text.size() || stat.text[close + 1] != ' ' ||
        stat.text.back() != '\n')
        return std::nullopt;
    ProcessStat parsed;
    const std::string_view rest = std::string_view(stat.text).substr(close + 2);
    size_t pos = 0;
    while (pos < rest.size()) {
        const size_t end = std::min(rest.find_first_of(" \n", pos), rest.size());
        if (end > pos)
            parsed.fields.emplace_back(rest.substr(pos, end - pos));
        pos = end + 1;
    }
    if (parsed.fields.empty())
        return std::nullopt;
    return parsed;
}

std::optional<double> read_process_start_boot_s(int pid, const std::string &proc_root)
{
    const auto stat = read_process_stat(proc_root + "/" + std::to_string(pid));
    const auto ticks = stat ? stat->number(22) : std::nullopt;
    if (!ticks)
        return std::nullopt;
    return static_cast<double>(*ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace diskwatch
