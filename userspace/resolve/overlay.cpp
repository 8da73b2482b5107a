#include "resolve/overlay.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

namespace diskwatch {

namespace {

// Overlays of overlays (Docker in Docker): a few levels, never a loop.
constexpr int kMaxOverlayDepth = 4;

}  // namespace

std::optional<std::string> overlay_upperdir(const MountEntry &entry)
{
    if (entry.fstype != "overlay")
        return std::nullopt;
    constexpr std::string_view key = "upperdir=";
    for (const auto &option : entry.super_options) {
        if (option.compare(0, key.size(), key) == 0 && option.size() > key.size()) {
            // mountinfo's octal escapes first; then overlayfs's own: a ',' (or
            // ':', or '\\') in a layer path is given, and shown, after a '\\'.
            const std::string shown = decode_mountinfo_escapes(std::string_view(option).substr(key.size()));
            std::string path;
            for (size_t i = 0; i < shown.size(); ++i) {
                if (shown[i] == '\\' && i + 1 < shown.size())
                    ++i;
                path.push_back(shown[i]);
            }
            return path;
        }
    }
    return std::nullopt;
}

void OverlayAttribution::reload(const MountTable &table)
{
    std::unordered_map<uint32_t, uint32_t> direct;  // overlay dev -> its upper layer's dev
    std::unordered_set<uint32_t> mounted;
    for (const auto &entry : table.entries()) {
        const uint32_t dev = entry.dev.to_kernel();
        mounted.insert(dev);
        const auto upper = overlay_upperdir(entry);
        if (!upper || direct.count(dev))
            continue;
        if (const auto upper_dev = device_of_(*upper); upper_dev && *upper_dev != dev)
            direct[dev] = *upper_dev;
    }
    std::unordered_map<uint32_t, uint32_t> targets;
    for (const auto &[overlay, upper] : direct) {
        uint32_t target = upper;
        for (int depth = 1; depth < kMaxOverlayDepth; ++depth) {
            const auto next = direct.find(target);
            if (next == direct.end())
                break;
            target = next->second;
        }
        // Only onto a filesystem we can name: a device outside our mount
        // namespace would turn a named overlay into an unnamed number.
        if (table.find_by_device(DeviceNumber::from_kernel(target)))
            targets[overlay] = target;
    }
    // A gone overlay keeps its target: its container's last bytes, read
    // after it went, stay on the disk. A device mounted again (anonymous
    // numbers are reused) takes its new meaning.
    std::unordered_set<uint32_t> gone;
    for (const auto &[overlay, target] : targets_)
        if (!mounted.count(overlay)) {
            targets.emplace(overlay, target);
            gone.insert(overlay);
        }
    targets_ = std::move(targets);
    gone_ = std::move(gone);
}

void OverlayAttribution::forget_gone_except(const std::unordered_set<uint32_t> &in_use)
{
    for (auto it = gone_.begin(); it != gone_.end();) {
        if (in_use.count(*it)) {
            ++it;
            continue;
        }
        targets_.erase(*it);
        it = gone_.erase(it);
    }
}

std::optional<uint32_t> host_device_of_path(const std::string &path)
{
    if (path.empty() || path.front() != '/')
        return std::nullopt;
    struct stat st {};
    if (::stat(("/proc/1/root" + path).c_str(), &st) != 0 && ::stat(path.c_str(), &st) != 0)
        return std::nullopt;
    return DeviceNumber {::major(st.st_dev), ::minor(st.st_dev)}.to_kernel();
}

}  // namespace diskwatch
