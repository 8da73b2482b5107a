#include "resolve/open_files.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fcntl.h>
#include <string_view>

#include "resolve/kernel_files.h"
#include "resolve/mountinfo.h"
#include "resolve/numbers.h"
#include "resolve/processes.h"

namespace diskwatch {

namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";

}  // namespace

std::optional<FdTarget> read_fd_target(const std::string &fd_link)
{
    // PATH_MAX: the kernel's d_path() gives no longer name (ENAMETOOLONG instead).
    char target[4096];
    const ssize_t n = ::readlink(fd_link.c_str(), target, sizeof(target) - 1);
    if (n <= 0)
        return std::nullopt;
    FdTarget fd;
    fd.path.assign(target, static_cast<size_t>(n));
    if (fd.path.size() > kDeletedSuffix.size() &&
        std::string_view(fd.path).substr(fd.path.size() - kDeletedSuffix.size()) == kDeletedSuffix) {
        fd.path.resize(fd.path.size() - kDeletedSuffix.size());
        fd.deleted_suffix = true;
    }
    return fd;
}

bool fd_opened_for_writing(const std::string &fdinfo_path)
{
    const auto fdinfo = read_kernel_file(fdinfo_path);
    const auto octal = fdinfo.ok() ? status_value(fdinfo.text, "flags") : std::nullopt;
    const auto flags = octal ? parse_integer<unsigned long>(*octal, 8) : std::nullopt;
    return flags && ((*flags & O_ACCMODE) == O_WRONLY || (*flags & O_ACCMODE) == O_RDWR);
}

std::vector<WrittenFile> files_written_by(int pid, uint32_t dev, const std::vector<uint64_t> &last_inodes,
                                          size_t limit, const std::string &proc_root)
{
    return files_written_by(pid, [dev](uint32_t file_dev) { return file_dev == dev; }, last_inodes, limit,
                            proc_root);
}

std::vector<WrittenFile> files_written_by(int pid, const std::function<bool(uint32_t dev)> &on_device,
                                          const std::vector<uint64_t> &last_inodes, size_t limit,
                                          const std::string &proc_root)
{
    const std::string fd_dir = proc_root + "/" + std::to_string(pid) + "/fd";
    std::vector<WrittenFile> last_written, other_open;
    std::vector<uint64_t> seen;
    if (DIR *dir = ::opendir(fd_dir.c_str())) {
        while (const dirent *entry = ::readdir(dir)) {
            if (entry->d_name[0] == '.')
                continue;
            const std::string link = fd_dir + "/" + entry->d_name;
            struct stat st {};
            if (::stat(link.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            if (!on_device(DeviceNumber::from_stat(st.st_dev).to_kernel()))
                continue;
            if (std::find(seen.begin(), seen.end(), st.st_ino) != seen.end())
                continue;
            const bool was_last = std::find(last_inodes.begin(), last_inodes.end(), st.st_ino) != last_inodes.end();
            if (!was_last && !fd_opened_for_writing(proc_root + "/" + std::to_string(pid) + "/fdinfo/" + entry->d_name))
                continue;
            auto target = read_fd_target(link);
            if (!target)
                continue;
            WrittenFile file;
            file.path = std::move(target->path);
            file.ino = st.st_ino;
            file.size_bytes = static_cast<uint64_t>(st.st_size);
            // nlink 0, not the suffix: a name may end so, and a file with another
            // hard link left shows the suffix too though closing it frees nothing.
            file.deleted = st.st_nlink == 0;
            seen.push_back(st.st_ino);
            (was_last ? last_written : other_open).push_back(std::move(file));
        }
        ::closedir(dir);
    }
    // Inodes written but no longer open (closed, or the process is gone): number only.
    for (uint64_t ino : last_inodes)
        if (std::find(seen.begin(), seen.end(), ino) == seen.end()) {
            WrittenFile file;
            file.ino = ino;
            last_written.push_back(file);
        }
    std::vector<WrittenFile> files = std::move(last_written);
    for (auto &file : other_open)
        files.push_back(std::move(file));
    if (files.size() > limit)
        files.resize(limit);
    return files;
}

}  // namespace diskwatch
