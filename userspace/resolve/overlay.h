// Overlay mounts (Docker's and Podman's container roots): which filesystem
// their bytes fill. A write through overlayfs is seen by the kernel side on
// the overlay's own anonymous device (0:NN), but the bytes land in its upper
// layer, a directory of a real filesystem (for Docker, the one holding its
// data root). Done in userspace from mountinfo: overlayfs is often a module
// without BTF, so the BPF side cannot rely on its types.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "resolve/mountinfo.h"

namespace diskwatch {

// The upperdir= of an overlay mount's super options, unescaped (overlayfs
// prints option values with \ooo escapes for , = \ and white space, so a
// comma in a path never splits the option list). nullopt for another
// filesystem, or an overlay without an upper layer (read-only: nothing is
// written through it).
std::optional<std::string> overlay_upperdir(const MountEntry &entry);

// The device (kernel dev_t) a path is on, or nullopt (errno irrelevant to the
// caller: an unresolved overlay keeps its own device).
using DeviceOfPath = std::function<std::optional<uint32_t>(const std::string &path)>;

// Maps each overlay device to the device of the filesystem its upper layer is
// on. Rebuilt when the mount table changes; an overlay that went (its
// container stopped) keeps its mapping until forget_gone_except() finds its
// device without counters, so the bytes its processes wrote stay on the disk
// they filled, even when the container came and went between two reads of
// the counters.
class OverlayAttribution {
public:
    // device_of: how a path's device is found (stat(2) through the host's
    // root in the product; a fake in unit tests).
    explicit OverlayAttribution(DeviceOfPath device_of) : device_of_(std::move(device_of)) {}

    // The overlays of `table`; those of earlier tables that are gone are kept
    // (a device number mounted again takes its new meaning).
    void reload(const MountTable &table);
    // Drops the gone overlays whose device is not in `in_use` (kernel dev_t:
    // the devices that still have counters).
    void forget_gone_except(const std::unordered_set<uint32_t> &in_use);
    // The device the bytes of `dev` count against: itself unless it is an
    // overlay whose upper layer was found on a mounted filesystem.
    uint32_t target(uint32_t dev) const
    {
        const auto found = targets_.find(dev);
        return found == targets_.end() ? dev : found->second;
    }
    size_t size() const { return targets_.size(); }

private:
    DeviceOfPath device_of_;
    std::unordered_map<uint32_t, uint32_t> targets_;
    std::unordered_set<uint32_t> gone_;  // in targets_, no longer mounted
};

// stat(2) of the path as the host's root sees it (/proc/1/root/<path>: an
// agent in a container with the host's pid namespace), then as ours does.
std::optional<uint32_t> host_device_of_path(const std::string &path);

}  // namespace diskwatch
