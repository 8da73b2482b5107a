#include "actions/held_state.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "actions/cgroup_files.h"
#include "actions/pidfd.h"
#include "vocabulary/json_names.h"
#include "resolve/cgroups.h"
#include "resolve/kernel_files.h"
#include "resolve/processes.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

namespace fs = std::filesystem;

namespace {

// Cgroup paths and names are bytes that any user with a delegated cgroup or a
// process name controls; JSON strings must be UTF-8. The file keeps the exact
// bytes as hex beside a readable copy, so the very cgroup that was frozen is
// thawed, and no name can make the save throw.
nlohmann::json path_record(const std::string &path)
{
    static const char digits[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(path.size() * 2);
    for (unsigned char byte : path) {
        hex.push_back(digits[byte >> 4]);
        hex.push_back(digits[byte & 0xf]);
    }
    nlohmann::json record = nlohmann::json::object();
    put_name(record, "path", path);
    record["path_hex"] = hex;
    return record;
}

// A path as saved by path_record(), or as a plain string by older agents;
// empty when the record is not one.
std::string path_from_record(const nlohmann::json &record)
{
    if (record.is_string())
        return record.get<std::string>();
    if (!record.is_object())
        return {};
    const auto hex_it = record.find("path_hex");
    if (hex_it == record.end() || !hex_it->is_string()) {
        const auto path_it = record.find("path");
        return path_it != record.end() && path_it->is_string() ? path_it->get<std::string>() : std::string();
    }
    const std::string &hex = hex_it->get_ref<const std::string &>();
    if (hex.size() % 2 != 0)
        return {};
    std::string path;
    for (size_t i = 0; i < hex.size(); i += 2) {
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, value, 16);
        if (ec != std::errc() || end != hex.data() + i + 2)
            return {};
        path.push_back(static_cast<char>(value));
    }
    return path;
}

template <typename T>
T field_or(const nlohmann::json &object, const char *key, T fallback)
{
    const auto it = object.find(key);
    if (it == object.end())
        return fallback;
    if constexpr (std::is_same_v<T, std::string>)
        return it->is_string() ? it->get<std::string>() : fallback;
    else
        return it->is_number() ? it->get<T>() : fallback;
}

std::string cgroup_below(const std::string &dir, const std::string &cgroup2_mount)
{
    return dir.substr(std::min(dir.size(), cgroup2_mount.size()));
}

// A cgroup directory the state file may name: strictly below the cgroup v2
// mount, with no "." or ".." component (a path that climbs out would let the
// file name any file for root to write to).
bool is_cgroup_dir(const std::string &dir, const std::string &cgroup2_mount)
{
    if (cgroup2_mount.empty() || dir.size() <= cgroup2_mount.size() + 1 ||
        dir.compare(0, cgroup2_mount.size(), cgroup2_mount) != 0 || dir[cgroup2_mount.size()] != '/')
        return false;
    const std::string rest = dir.substr(cgroup2_mount.size()) + "/";
    return rest.find("/../") == std::string::npos && rest.find("/./") == std::string::npos;
}

}  // namespace

std::string held_state_path(const std::string &state_dir) { return state_dir + "/state.json"; }

bool save_held_state(const std::string &state_dir, const HeldState &state, std::string *error)
{
    nlohmann::json json;
    json["agent_pid"] = state.agent_pid;
    json["stopped"] = nlohmann::json::array();
    json["frozen"] = nlohmann::json::array();
    json["io_max"] = nlohmann::json::array();
    json["stopped_in"] = nlohmann::json::array();
    for (const auto &dir : state.stopped_in)
        json["stopped_in"].push_back(path_record(dir));
    for (const auto &stopped : state.stopped) {
        nlohmann::json entry = {{"pid", stopped.pid}, {"start_boot_s", stopped.start_boot_s}};
        put_name(entry, "comm", stopped.comm);
        json["stopped"].push_back(std::move(entry));
    }
    for (const auto &dir : state.frozen)
        json["frozen"].push_back(path_record(dir));
    for (const auto &limited : state.io_max) {
        nlohmann::json entry = path_record(limited.cgroup_dir);
        entry["dev"] = limited.dev;
        json["io_max"].push_back(std::move(entry));
    }
    std::error_code ec;
    fs::create_directories(state_dir, ec);
    const std::string path = held_state_path(state_dir);
    const std::string temp = path + ".tmp";
    const std::string text = json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    if (!write_whole_file(temp, text, error))
        return false;
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        *error = path + ": rename: " + errno_text(errno);
        return false;
    }
    return true;
}

std::optional<HeldState> load_held_state(const std::string &state_dir, std::string *error)
{
    const std::string path = held_state_path(state_dir);
    const auto file = read_kernel_file(path);
    if (!file.ok()) {
        if (file.error != ENOENT)
            *error = path + ": " + errno_text(file.error);
        return std::nullopt;
    }
    const nlohmann::json json = nlohmann::json::parse(file.text, nullptr, false);
    if (!json.is_object()) {
        *error = path + ": not a JSON object";
        return std::nullopt;
    }
    HeldState state;
    state.agent_pid = field_or<pid_t>(json, "agent_pid", 0);
    auto list = [&](const char *key) {
        const auto it = json.find(key);
        return it != json.end() && it->is_array() ? *it : nlohmann::json::array();
    };
    for (const auto &entry : list("stopped"))
        if (entry.is_object())
            state.stopped.push_back({field_or<pid_t>(entry, "pid", 0), field_or<double>(entry, "start_boot_s", 0.0),
                                     field_or<std::string>(entry, "comm", "")});
    for (const auto &entry : list("frozen"))
        if (auto dir = path_from_record(entry); !dir.empty())
            state.frozen.push_back(dir);
    for (const auto &entry : list("stopped_in"))
        if (auto dir = path_from_record(entry); !dir.empty())
            state.stopped_in.push_back(dir);
    for (const auto &entry : list("io_max"))
        if (auto dir = path_from_record(entry); !dir.empty())
            state.io_max.push_back({dir, entry.is_object() ? field_or<std::string>(entry, "dev", "") : ""});
    return state;
}

Subject released_subject(const HeldRelease &release)
{
    Subject subject;
    if (release.mechanism == Mechanism::sigstop) {
        subject.pid = static_cast<uint32_t>(release.pid);
        subject.comm = release.comm;
    } else {
        subject.scope = RuleScope::cgroup;
        subject.cgroup = release.cgroup;
    }
    return subject;
}

std::vector<HeldRelease> release_held(const std::optional<HeldState> &state, const std::string &state_dir,
                                      const std::string &cgroup2_mount)
{
    std::vector<HeldRelease> released;
    std::string error;
    if (state) {
        for (const auto &stopped : state->stopped) {
            // Same pid and the same start time (checked once the pidfd pins
            // the pid): the very process that was stopped.
            if (stopped.pid <= 0 || stopped.start_boot_s <= 0)
                continue;
            auto pidfd = Pidfd::open(stopped.pid, "", stopped.start_boot_s, &error);
            if (!pidfd)
                continue;
            const char was = process_state(stopped.pid);
            if (pidfd->signal(SIGCONT, &error) && (was == 'T' || was == 't'))
                released.push_back({Mechanism::sigstop, stopped.pid, stopped.comm, {}});
        }
        // A cgroup throttled in the kernel: whichever members are stopped now.
        // (A member stopped by its own job control is continued too: the
        // file cannot tell them apart, and a continued job only runs.)
        for (const auto &dir : state->stopped_in) {
            if (!is_cgroup_dir(dir, cgroup2_mount))
                continue;
            for (const int pid : cgroup_processes(dir)) {
                const char was = process_state(pid);
                if (was != 'T' && was != 't')
                    continue;
                auto pidfd = Pidfd::open(pid, "", 0, &error);
                auto identity = read_process_identity(pid);
                if (pidfd && pidfd->signal(SIGCONT, &error))
                    released.push_back({Mechanism::sigstop, pid, identity ? identity->comm : "", {}});
            }
        }
        for (const auto &limited : state->io_max)
            if (is_cgroup_dir(limited.cgroup_dir, cgroup2_mount) &&
                write_control(limited.cgroup_dir + "/io.max", limited.dev + " wbps=max", &error))
                released.push_back({Mechanism::io_max, 0, {}, cgroup_below(limited.cgroup_dir, cgroup2_mount)});
    }
    // Frozen cgroups: the state file's, and any cgroup carrying our mark (the
    // state file may be older than the freeze).
    std::vector<std::string> frozen;
    if (state)
        for (const auto &dir : state->frozen)
            if (is_cgroup_dir(dir, cgroup2_mount))
                frozen.push_back(dir);
    if (!cgroup2_mount.empty()) {
        std::error_code ec;
        for (fs::recursive_directory_iterator it(cgroup2_mount, fs::directory_options::skip_permission_denied, ec), end;
             it != end; it.increment(ec)) {
            if (ec)
                break;
            if (!it->is_directory(ec))
                continue;
            char mark[4096];
            const ssize_t n = ::getxattr(it->path().c_str(), kFrozenXattr, mark, sizeof(mark));
            if (n > 0 && std::string(mark, static_cast<size_t>(n)) == state_dir)
                frozen.push_back(it->path().string());
        }
    }
    std::sort(frozen.begin(), frozen.end());
    frozen.erase(std::unique(frozen.begin(), frozen.end()), frozen.end());
    for (const auto &dir : frozen) {
        const bool was_frozen = read_control(dir + "/cgroup.freeze") == "1";
        ::removexattr(dir.c_str(), kFrozenXattr);
        if (was_frozen && write_control(dir + "/cgroup.freeze", "0", &error))
            released.push_back({Mechanism::cgroup_freeze, 0, {}, cgroup_below(dir, cgroup2_mount)});
    }
    return released;
}

}  // namespace diskwatch
