#include "resolve/space_walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace diskwatch {

namespace {

void keep_largest(std::vector<SpaceEntry> &entries, size_t keep)
{
    std::sort(entries.begin(), entries.end(),
              [](const SpaceEntry &a, const SpaceEntry &b) { return a.allocated_bytes > b.allocated_bytes; });
    if (entries.size() > keep)
        entries.resize(keep);
}

}  // namespace

SpaceWalk walk_space(const std::string &mount_point, size_t max_entries, double budget_s, size_t keep,
                     const std::unordered_set<uint64_t> &find_inodes, const std::string &skip)
{
    SpaceWalk walk;
    const auto started = std::chrono::steady_clock::now();
    const auto deadline = started + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                        std::chrono::duration<double>(budget_s));
    struct stat root {};
    if (::lstat(mount_point.c_str(), &root) != 0 || !S_ISDIR(root.st_mode))
        return walk;
    // Depth-first by path. Each directory is opened O_NOFOLLOW and checked
    // to be on the walked filesystem: one swapped for a symlink to another
    // filesystem during the walk is not entered. (It only reads sizes.)
    struct Pending {
        std::string path;
        int depth;
    };
    std::vector<Pending> stack {{mount_point == "/" ? std::string() : mount_point, 0}};
    std::map<std::string, uint64_t> directory_bytes;  // to kMaxDirectoryDepth
    std::vector<SpaceEntry> files;
    const std::string base = mount_point == "/" ? std::string() : mount_point;
    while (!stack.empty()) {
        if (walk.entries >= max_entries || std::chrono::steady_clock::now() >= deadline) {
            walk.truncated = true;
            break;
        }
        const Pending dir = std::move(stack.back());
        stack.pop_back();
        const std::string open_path = dir.path.empty() ? "/" : dir.path;
        const int fd = ::open(open_path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;  // gone, or not allowed: the walk goes on
        struct stat opened {};
        if (::fstat(fd, &opened) != 0 || opened.st_dev != root.st_dev) {
            ::close(fd);
            continue;
        }
        DIR *stream = ::fdopendir(fd);
        if (!stream) {
            ::close(fd);
            continue;
        }
        while (const dirent *entry = ::readdir(stream)) {
            const std::string name = entry->d_name;
            if (name == "." || name == "..")
                continue;
            if (++walk.entries >= max_entries) {
                walk.truncated = true;
                break;
            }
            struct stat st {};
            if (::fstatat(fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != root.st_dev)
                continue;  // another filesystem mounted here is its own
            const std::string path = dir.path + "/" + name;
            if (S_ISDIR(st.st_mode)) {
                if (path != skip)
                    stack.push_back({path, dir.depth + 1});
                continue;
            }
            const uint64_t bytes = static_cast<uint64_t>(st.st_blocks) * 512;
            walk.allocated_bytes += bytes;
            if (find_inodes.count(st.st_ino))
                walk.named.emplace(st.st_ino, path);
            if (!S_ISREG(st.st_mode))
                continue;
            // Each ancestor to kMaxDirectoryDepth holds the file's bytes.
            size_t slash = base.size();
            for (int depth = 1; depth <= kMaxDirectoryDepth; ++depth) {
                slash = path.find('/', slash + 1);
                if (slash == std::string::npos)
                    break;
                directory_bytes[path.substr(0, slash)] += bytes;
            }
            files.push_back({path, bytes, static_cast<uint64_t>(st.st_size), static_cast<double>(st.st_mtime), st.st_ino});
            if (files.size() > keep * 64)
                keep_largest(files, keep);
        }
        ::closedir(stream);
    }
    keep_largest(files, keep);
    walk.files = std::move(files);
    for (const auto &[path, bytes] : directory_bytes)
        walk.directories.push_back({path, bytes, 0, 0, 0});
    keep_largest(walk.directories, keep);
    walk.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return walk;
}

}  // namespace diskwatch
