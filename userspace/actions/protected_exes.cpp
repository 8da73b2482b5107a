#include "actions/protected_exes.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include <spdlog/spdlog.h>

#include "rules/policy.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

namespace {

constexpr std::string_view kCaseless = "(?i)";
constexpr std::string_view kDeleted = " (deleted)";

// A file descriptor closed on scope exit.
class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;
    int get() const { return fd_; }
    void reset(int fd)
    {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = fd;
    }
    int release()
    {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }

private:
    int fd_;
};

// `path` (absolute, as the host names it) opened inside the host's root:
// every component and symlink resolved there (RESOLVE_IN_ROOT: an absolute
// symlink such as /etc/alternatives' stays in the host's tree), never through
// a magic link. -1 with errno when it cannot be.
int open_in_root(int root_fd, const std::string &path, int flags)
{
    open_how how {};
    how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    const std::string relative = path.empty() || path == "/" ? std::string(".") : path;
    long fd = ::syscall(SYS_openat2, root_fd, relative.c_str(), &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS) {
        // Before 5.6: components resolved in the root, absolute symlinks not.
        const std::string inside = relative[0] == '/' ? relative.substr(1) : relative;
        fd = ::openat(root_fd, inside.empty() ? "." : inside.c_str(), flags | O_CLOEXEC);
    }
    return static_cast<int>(fd);
}

bool has_glob(std::string_view component)
{
    return component.find_first_of("*?[") != std::string_view::npos;
}

std::vector<std::string> split_path(std::string_view path)
{
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= path.size()) {
        const size_t slash = path.find('/', start);
        const size_t end = slash == std::string_view::npos ? path.size() : slash;
        if (end > start)
            parts.emplace_back(path.substr(start, end - start));
        if (slash == std::string_view::npos)
            break;
        start = slash + 1;
    }
    return parts;
}

std::string join(const std::string &dir, const std::string &name)
{
    return dir == "/" ? "/" + name : dir + "/" + name;
}

std::string identity_text(const FileIdentity &identity)
{
    return "device " + std::to_string(major(identity.dev)) + ":" + std::to_string(minor(identity.dev)) + ", inode " +
           std::to_string(identity.ino);
}

// statx: the identity (birth time where the filesystem keeps one), owner, mode.
bool identify(int dir_fd, const char *path, int flags, FileIdentity *identity, uint32_t *owner, uint32_t *mode)
{
    struct statx st {};
    if (::statx(dir_fd, path, flags, STATX_BASIC_STATS | STATX_BTIME, &st) != 0)
        return false;
    identity->dev = makedev(st.stx_dev_major, st.stx_dev_minor);
    identity->ino = st.stx_ino;
    identity->birth_ns = (st.stx_mask & STATX_BTIME) != 0
                             ? static_cast<int64_t>(st.stx_btime.tv_sec) * 1000000000 + st.stx_btime.tv_nsec
                             : 0;
    *owner = st.stx_uid;
    *mode = st.stx_mode;
    return true;
}

bool same_file_namespace(const std::string &a, const std::string &b)
{
    struct stat first {};
    struct stat second {};
    return ::stat(a.c_str(), &first) == 0 && ::stat(b.c_str(), &second) == 0 && first.st_dev == second.st_dev &&
           first.st_ino == second.st_ino;
}

}  // namespace

std::vector<std::string> expand_host_glob(int host_root_fd, const std::string &pattern, size_t limit)
{
    const bool caseless = pattern.compare(0, kCaseless.size(), kCaseless) == 0;
    const std::string_view path = std::string_view(pattern).substr(caseless ? kCaseless.size() : 0);
    if (path.empty() || path[0] != '/')
        return {};  // a path the host's root cannot name
    std::vector<std::string> candidates = {"/"};
    for (const auto &component : split_path(path)) {
        std::vector<std::string> next;
        for (const auto &dir : candidates) {
            if (!has_glob(component)) {
                next.push_back(join(dir, component));
                continue;
            }
            Fd fd(open_in_root(host_root_fd, dir, O_RDONLY | O_DIRECTORY));
            if (fd.get() < 0)
                continue;
            DIR *listing = ::fdopendir(fd.get());
            if (!listing)
                continue;
            fd.release();  // the DIR owns it now
            while (const dirent *entry = ::readdir(listing)) {
                const std::string_view name = entry->d_name;
                if (name == "." || name == "..")
                    continue;
                if (::fnmatch(component.c_str(), entry->d_name, FNM_PERIOD | (caseless ? FNM_CASEFOLD : 0)) == 0)
                    next.push_back(join(dir, entry->d_name));
                if (next.size() >= limit)
                    break;
            }
            ::closedir(listing);
            if (next.size() >= limit)
                break;
        }
        candidates = std::move(next);
        if (candidates.empty())
            break;
    }
    std::vector<std::string> found;
    for (const auto &candidate : candidates) {
        Fd fd(open_in_root(host_root_fd, candidate, O_PATH));
        if (fd.get() >= 0 && found.size() < limit)
            found.push_back(candidate);
    }
    return found;
}

std::optional<std::string> exe_protection_reason(const ExeFacts &exe,
                                                 const std::map<FileIdentity, ProtectedFile> &files)
{
    if (auto it = files.find(exe.identity); it != files.end()) {
        const ProtectedFile &file = it->second;
        if (file.current)
            return "exe " + file.path + " is protect.exe " + file.pattern + " (the host's file: " +
                   identity_text(exe.identity) + ")";
        return "exe is an earlier version of " + file.path + " (replaced while the agent ran: " +
               identity_text(exe.identity) + "), protect.exe " + file.pattern;
    }
    const std::string_view path = exe.path;
    if (path.size() <= kDeleted.size() || path.substr(path.size() - kDeleted.size()) != kDeleted)
        return std::nullopt;
    const std::string_view was = path.substr(0, path.size() - kDeleted.size());
    if (!exe.host_user_namespace || (exe.mode & (S_IWGRP | S_IWOTH)) != 0)
        return std::nullopt;
    for (const auto &[identity, file] : files) {
        if (!file.current || file.path != was || identity.dev != exe.identity.dev || file.owner_uid != exe.owner_uid)
            continue;
        return "exe " + std::string(path) + " was replaced before the agent saw it; protected as protect.exe " +
               file.pattern + ": the same filesystem and owner (uid " + std::to_string(file.owner_uid) +
               ") as the file there now, and the process is in the host's user namespace";
    }
    return std::nullopt;
}

ProtectedExes::ProtectedExes(std::vector<std::string> patterns, Options options) : options_(std::move(options))
{
    set_patterns(std::move(patterns));
}

void ProtectedExes::set_patterns(std::vector<std::string> patterns)
{
    {
        std::lock_guard lock(mutex_);
        patterns_ = std::move(patterns);
        for (auto it = files_.begin(); it != files_.end();) {
            if (std::find(patterns_.begin(), patterns_.end(), it->second.pattern) != patterns_.end()) {
                ++it;
                continue;
            }
            order_.erase(it->first);
            it = files_.erase(it);
        }
    }
    refresh(0, true);
}

ProtectedExes::Scan ProtectedExes::scan(const std::vector<std::string> &patterns) const
{
    Scan result;
    if (patterns.empty())
        return result;
    const std::string root = options_.proc_root + "/" + std::to_string(options_.host_pid) + "/root";
    Fd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (root_fd.get() < 0) {
        // PID 1's root is out of reach (no CAP_SYS_PTRACE over it: a
        // sandbox): the agent's own root, whose files are the host's unless
        // the agent runs chrooted.
        if (!root_unreachable_said_.exchange(true))
            spdlog::warn("protect.exe: cannot open {} ({}): resolving from the agent's own root", root,
                         errno_text(errno));
        root_fd.reset(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    }
    if (root_fd.get() < 0)
        return result;
    for (const auto &pattern : patterns) {
        for (const auto &path : expand_host_glob(root_fd.get(), pattern, options_.max_files_per_pattern)) {
            Fd fd(open_in_root(root_fd.get(), path, O_PATH));
            FileIdentity identity;
            uint32_t owner = 0;
            uint32_t mode = 0;
            if (fd.get() < 0 || !identify(fd.get(), "", AT_EMPTY_PATH, &identity, &owner, &mode) || !S_ISREG(mode))
                continue;
            ProtectedFile file {pattern, path, owner, true, nullptr};
            if (identity.birth_ns == 0) {
                // No birth time: held open, so that its inode number is not
                // given to another file while it is remembered.
                const int raw = fd.release();
                file.held = std::shared_ptr<const int>(new int(raw), [](const int *held_fd) {
                    ::close(*held_fd);
                    delete held_fd;
                });
            }
            result.files.emplace(identity, std::move(file));
        }
    }
    return result;
}

void ProtectedExes::merge_locked(const Scan &scan)
{
    ++generation_;
    for (auto &[identity, file] : files_)
        file.current = false;
    for (const auto &[identity, file] : scan.files) {
        files_[identity] = file;
        order_[identity] = generation_;
    }
    // Bounded: the identities replaced longest ago go first; the current ones stay.
    while (files_.size() > options_.max_remembered) {
        auto oldest = files_.end();
        for (auto it = files_.begin(); it != files_.end(); ++it)
            if (!it->second.current && (oldest == files_.end() || order_[it->first] < order_[oldest->first]))
                oldest = it;
        if (oldest == files_.end())
            break;
        order_.erase(oldest->first);
        files_.erase(oldest);
    }
}

void ProtectedExes::refresh(double now_s, bool force)
{
    std::vector<std::string> patterns;
    {
        std::lock_guard lock(mutex_);
        if (!force && now_s - last_scan_s_ < options_.rescan_s)
            return;
        last_scan_s_ = now_s;
        patterns = patterns_;
    }
    Scan fresh = scan(patterns);  // unlocked: reason() never waits on a filesystem
    std::lock_guard lock(mutex_);
    if (patterns == patterns_)
        merge_locked(fresh);
}

std::optional<std::string> ProtectedExes::reason(pid_t pid) const
{
    {
        std::lock_guard lock(mutex_);
        if (files_.empty())
            return std::nullopt;
    }
    const std::string dir = options_.proc_root + "/" + std::to_string(pid);
    ExeFacts exe;
    if (!identify(AT_FDCWD, (dir + "/exe").c_str(), 0, &exe.identity, &exe.owner_uid, &exe.mode))
        return std::nullopt;  // gone, or a kernel thread: nothing it runs is protected
    char target[4096];
    const ssize_t length = ::readlink((dir + "/exe").c_str(), target, sizeof(target) - 1);
    if (length > 0)
        exe.path.assign(target, static_cast<size_t>(length));
    // The agent's own user namespace is the host's: BPF programs load only there.
    exe.host_user_namespace = same_file_namespace(dir + "/ns/user", options_.proc_root + "/self/ns/user");
    std::lock_guard lock(mutex_);
    return exe_protection_reason(exe, files_);
}

size_t ProtectedExes::remembered() const
{
    std::lock_guard lock(mutex_);
    return files_.size();
}

bool ProtectedExes::empty() const
{
    std::lock_guard lock(mutex_);
    return patterns_.empty();
}

}  // namespace diskwatch
