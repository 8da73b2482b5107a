#include "resolve/deleted_files.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <optional>
#include <utility>

#include "resolve/cgroups.h"
#include "resolve/kernel_files.h"
#include "resolve/mountinfo.h"
#include "resolve/numbers.h"
#include "resolve/open_files.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

namespace {

// comm is at most 16 bytes; anything longer is not the kernel's.
constexpr size_t kCommMaxBytes = 64;

// Who a process is, read once, and only for a process found holding one.
struct HolderIdentity {
    std::string comm;
    std::string cgroup;
};

HolderIdentity read_holder_identity(int pid, const std::string &proc_root)
{
    HolderIdentity identity;
    const auto comm = read_kernel_file(proc_root + "/" + std::to_string(pid) + "/comm", kCommMaxBytes);
    if (comm.ok()) {
        identity.comm = comm.text;
        if (!identity.comm.empty() && identity.comm.back() == '\n')
            identity.comm.pop_back();
    }
    identity.cgroup = cgroup2_path_of_process(pid, proc_root).value_or("");
    return identity;
}

struct FileKey {
    uint64_t dev = 0;
    uint64_t inode = 0;
    auto operator<=>(const FileKey &) const = default;
};

}  // namespace

DeletedFilesScan find_deleted_open_files(const std::string &proc_root,
                                         const std::function<bool(uint32_t dev)> &on_device,
                                         const DeletedFilesLimits &limits)
{
    DeletedFilesScan scan;
    DIR *proc = ::opendir(proc_root.c_str());
    if (proc == nullptr) {
        scan.notes.push_back(proc_root + ": " + errno_text(errno));
        return scan;
    }
    std::map<FileKey, size_t> index;  // -> scan.files
    bool holders_cut = false;
    while (const dirent *process = ::readdir(proc)) {
        const auto pid = parse_integer<int>(process->d_name);
        if (!pid || *pid <= 0)
            continue;
        if (scan.fds_examined >= limits.max_fds) {
            scan.truncated = true;
            break;
        }
        const std::string pid_dir = proc_root + "/" + process->d_name;
        DIR *fds = ::opendir((pid_dir + "/fd").c_str());
        if (fds == nullptr) {
            // ENOENT: exited since readdir, ordinary; EACCES: another user's, without root.
            if (errno == EACCES || errno == EPERM)
                ++scan.processes_unreadable;
            continue;
        }
        ++scan.processes_examined;
        std::optional<HolderIdentity> identity;
        while (const dirent *entry = ::readdir(fds)) {
            const auto fd = parse_integer<int>(entry->d_name);
            if (!fd || *fd < 0)
                continue;
            if (scan.fds_examined >= limits.max_fds) {
                scan.truncated = true;
                break;
            }
            ++scan.fds_examined;
            const std::string link = pid_dir + "/fd/" + entry->d_name;
            struct stat st {};
            // Through the link to the open file itself: its nlink, not a name's.
            if (::stat(link.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 0)
                continue;
            const uint32_t dev = DeviceNumber::from_stat(st.st_dev).to_kernel();
            if (on_device && !on_device(dev))
                continue;
            const FileKey key{st.st_dev, st.st_ino};
            auto [at, added] = index.try_emplace(key, scan.files.size());
            if (added) {
                const auto target = read_fd_target(link);
                DeletedFile file;
                file.path = target ? target->path : std::string();
                file.dev = dev;
                file.dev_text = DeviceNumber::from_kernel(dev).to_string();
                file.inode = st.st_ino;
                file.size_bytes = static_cast<uint64_t>(st.st_size);
                file.allocated_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
                scan.files.push_back(std::move(file));
            }
            DeletedFile &file = scan.files[at->second];
            // One process's fds come together (this loop), so its entry is the last.
            if (file.holders.empty() || file.holders.back().pid != *pid) {
                if (file.holders.size() >= limits.max_holders_per_file) {
                    holders_cut = true;
                    continue;
                }
                if (!identity)
                    identity = read_holder_identity(*pid, proc_root);
                DeletedFileHolder holder;
                holder.pid = *pid;
                holder.comm = identity->comm;
                holder.cgroup = identity->cgroup;
                file.holders.push_back(std::move(holder));
            }
            DeletedFileHolder &holder = file.holders.back();
            holder.fds.push_back(*fd);
            if (!holder.writable)
                holder.writable = fd_opened_for_writing(pid_dir + "/fdinfo/" + entry->d_name);
        }
        ::closedir(fds);
    }
    ::closedir(proc);

    for (auto &file : scan.files) {
        std::sort(file.holders.begin(), file.holders.end(),
                  [](const DeletedFileHolder &a, const DeletedFileHolder &b) { return a.pid < b.pid; });
        for (auto &holder : file.holders)
            std::sort(holder.fds.begin(), holder.fds.end());
    }
    std::sort(scan.files.begin(), scan.files.end(), [](const DeletedFile &a, const DeletedFile &b) {
        if (a.allocated_bytes != b.allocated_bytes)
            return a.allocated_bytes > b.allocated_bytes;
        if (a.dev != b.dev)
            return a.dev < b.dev;
        return a.inode < b.inode;
    });
    if (scan.truncated)
        scan.notes.push_back("stopped after " + std::to_string(scan.fds_examined) +
                             " open files: more deleted files may be held");
    if (scan.files.size() > limits.max_files) {
        scan.notes.push_back(std::to_string(scan.files.size()) + " deleted files held open, the largest " +
                             std::to_string(limits.max_files) + " kept");
        scan.files.resize(limits.max_files);
        scan.truncated = true;
    }
    if (holders_cut) {
        scan.notes.push_back("a file held by more than " + std::to_string(limits.max_holders_per_file) +
                             " processes lists only that many");
        scan.truncated = true;
    }
    if (scan.processes_unreadable > 0)
        scan.notes.push_back(std::to_string(scan.processes_unreadable) +
                             " processes' open files could not be read (permission denied: run as root)");
    return scan;
}

}  // namespace diskwatch
