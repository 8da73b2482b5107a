// Where the bytes of a filesystem are now: a walk of one mount that never
// crosses into another, bounded in entries and time (a full disk can hold
// millions of files; `explain` answers within seconds). It keeps the largest
// files and directories by the space they hold, and names the inodes it was
// asked to find (files the flight recorder saw written but could not name).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

namespace diskwatch {

struct SpaceEntry {
    std::string path;
    uint64_t allocated_bytes = 0;  // st_blocks * 512: what it holds of the disk
    uint64_t size_bytes = 0;
    double mtime = 0;  // unix seconds (files)
    uint64_t ino = 0;
};

struct SpaceWalk {
    std::vector<SpaceEntry> files;        // the largest, largest first
    std::vector<SpaceEntry> directories;  // the largest subtrees, largest first (to kMaxDirectoryDepth)
    std::map<uint64_t, std::string> named;  // of the inodes asked for, those found
    uint64_t entries = 0;
    uint64_t allocated_bytes = 0;  // of everything walked
    bool truncated = false;        // stopped at max_entries or budget_s
    double seconds = 0;
};

inline constexpr int kMaxDirectoryDepth = 4;  // below the mount point

// `skip`: a directory not walked (the flight recorder's own store).
SpaceWalk walk_space(const std::string &mount_point, size_t max_entries, double budget_s, size_t keep,
                     const std::unordered_set<uint64_t> &find_inodes = {}, const std::string &skip = {});

}  // namespace diskwatch
