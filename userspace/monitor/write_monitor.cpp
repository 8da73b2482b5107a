#include "monitor/write_monitor.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sys/epoll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <unordered_map>

#include "resolve/filesystems.h"

namespace diskwatch {

namespace {

double unix_now_s()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double steady_s(std::chrono::steady_clock::time_point t)
{
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}

bool process_alive(uint32_t tgid)
{
    return ::kill(static_cast<pid_t>(tgid), 0) == 0 || errno == EPERM;
}

// Filesystems a person thinks of as "disks" that can fill (tmpfs fills memory):
// writable, visible, and not in the kernel's own trees; overlays and the
// like only when asked for (all_mounts).
bool is_storage_mount(const MountTable &table, const MountEntry &entry, bool all_mounts)
{
    if (!all_mounts && hidden_by_default(entry.fstype, entry.mount_point))
        return false;
    const bool storage = entry.source.rfind("/dev/", 0) == 0 || entry.fstype == "tmpfs" ||
                         entry.fstype == "overlay" || entry.fstype == "btrfs" || entry.fstype == "zfs" ||
                         entry.fstype == "xfs" || entry.fstype == "nfs" || entry.fstype == "nfs4";
    const bool kernel_tree = entry.mount_point.rfind("/sys/", 0) == 0 || entry.mount_point.rfind("/proc/", 0) == 0;
    const bool read_only = !entry.mount_options.empty() && entry.mount_options.front() == "ro";
    return storage && !kernel_tree && !read_only && table.is_visible(entry);
}

// Kernel interfaces that look like files (writing a pid to cgroup.procs, a
// value to /proc/sys): S_IFREG to the BPF side, but no disk fills from them.
bool is_pseudo_filesystem(const std::string &fstype)
{
    static const std::unordered_set<std::string> pseudo = {
        "proc", "sysfs", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs", "bpf", "configfs",
        "devpts", "pstore", "efivarfs", "fusectl", "binfmt_misc", "hugetlbfs", "mqueue", "rpc_pipefs", "nsfs"};
    return pseudo.count(fstype) > 0;
}

}  // namespace

std::unique_ptr<WriteMonitor> WriteMonitor::start(HookFamily family, std::string *error,
                                                std::shared_ptr<ContainerResolver> containers)
{
    auto tracer = WriteTracer::start(family, error);
    if (!tracer)
        return nullptr;
    // Loading parsed the kernel's BTF (several MiB, freed since) and maybe
    // loaded the object more than once: give that heap back, or it stays in
    // the resident set of a process that runs forever.
    malloc_trim(0);
    if (!containers)
        containers = std::make_shared<ContainerResolver>();
    return std::unique_ptr<WriteMonitor>(new WriteMonitor(std::move(tracer), std::move(containers)));
}

WriteMonitor::WriteMonitor(std::unique_ptr<WriteTracer> tracer, std::shared_ptr<ContainerResolver> containers)
    : tracer_(std::move(tracer)),
      processes_([](uint32_t tgid) { return read_process_identity(static_cast<int>(tgid)); }),
      mounts_(MountTable::load()),
      overlays_(host_device_of_path),
      containers_(std::move(containers))
{
    overlays_.reload(mounts_);
    if (const MountEntry *cgroup2 = mounts_.find_cgroup2()) {
        cgroups_.emplace(cgroup2->mount_point);
        if (containers_->roots().cgroup_mount.empty())
            containers_->set_cgroup_mount(cgroup2->mount_point);
    }
    mount_changes_fd_ = ::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    mounts_changed();  // arm it: changes from now on
    // Woken by a mount change too: a container that starts, writes and is
    // gone within one refresh must have its overlay seen while it exists
    // (its bytes are read later, by device number).
    if (mount_changes_fd_ >= 0)
        tracer_->watch_fd(mount_changes_fd_, EPOLLPRI);
    start_ = last_refresh_ = std::chrono::steady_clock::now();
    // A first fill observation, so the first refresh already has a rate.
    const double now = steady_s(start_);
    for (const auto &entry : mounts_.entries())
        if (is_storage_mount(mounts_, entry, false) && entry.root == "/")
            if (auto usage = read_filesystem_usage(entry.mount_point))
                growth_.observe(entry.dev.to_kernel(), now, usage->used_bytes, usage->available_bytes);
}

WriteMonitor::~WriteMonitor()
{
    if (mount_changes_fd_ >= 0)
        ::close(mount_changes_fd_);
}

void WriteMonitor::reload_mounts()
{
    mounts_ = MountTable::load();
    usage_read_.clear();  // a device number may now be another filesystem
    overlays_.reload(mounts_);
}

bool WriteMonitor::mounts_changed()
{
    if (mount_changes_fd_ < 0)
        return true;  // cannot tell: assume it did
    pollfd watch {mount_changes_fd_, POLLPRI, 0};
    // The kernel reports POLLERR|POLLPRI once per change of the mount
    // namespace's event count since the previous poll (fs/proc_namespace.c).
    if (::poll(&watch, 1, 0) < 0)
        return true;
    return (watch.revents & (POLLERR | POLLPRI)) != 0;
}

void WriteMonitor::pump_events(int timeout_ms)
{
    bool mounts_moved = false;
    tracer_->poll_events(timeout_ms, [this](const ProcessEvent &event) { processes_.on_event(event); },
                         &mounts_moved);
    // epoll consumed the change notice: the refresh's own poll will not see it.
    if (mounts_moved)
        reload_mounts();
}

void WriteMonitor::reap_vanished_processes(std::unordered_set<uint32_t> &exited, uint64_t ringbuf_drops)
{
    // An exit record lost to a full ring buffer (counted in drops) must not
    // pin the process's keys in the kernel map forever: treat tgids that no
    // longer exist as exited. Only a lost record can leave one behind, so
    // the sweep (a kill(pid, 0) per live writer) runs every few seconds
    // after a loss, and otherwise rarely, as a safety net.
    const bool records_lost = ringbuf_drops != ringbuf_drops_at_sweep_;
    if (refreshes_ % (records_lost ? 8 : 240) != 0)
        return;
    ringbuf_drops_at_sweep_ = ringbuf_drops;
    for (uint32_t tgid : ledger_.live_tgids())
        if (!exited.count(tgid) && !process_alive(tgid))
            exited.insert(tgid);
}

WriteReport WriteMonitor::refresh(const ReportOptions &options)
{
    ++refreshes_;
    // Drain lifecycle records first: every exit consumed here happened before
    // the map read below, so those processes' counters are final.
    pump_events(0);
    auto exited = processes_.take_exits();
    reap_vanished_processes(exited, drops_.ringbuf_full);
    // Quiet: no write and no drop since the previous read, and no process
    // exited, so every interval is zero and every total what it was. An idle
    // machine's refresh then costs no map walk and no re-aggregation of
    // every key (most of an idle agent's CPU, and all that grows with the
    // number of idle writers it keeps).
    const bool quiet = !tracer_->take_counters_moved() && exited.empty();
    // Before the deltas are attributed: an overlay mounted since the previous
    // refresh (a container started) must already map to its upper filesystem.
    const bool mounts_moved = mounts_changed();
    if (!quiet) {
        const auto samples = tracer_->read_writers();
        drops_ = tracer_->read_drops();
        last_deltas_ = ledger_.advance(samples, exited);
        tracer_->delete_writers(ledger_.take_keys_to_delete());
        raw_devices_.clear();
        for (const auto &delta : last_deltas_)
            raw_devices_.insert(delta.key.dev);
        if (mounts_moved)
            reload_mounts();
        overlays_.forget_gone_except(raw_devices_);
        // The ledger and the kernel keep the overlay's device (their keys);
        // everything built from here on sees the filesystem the bytes fill.
        for (auto &delta : last_deltas_)
            delta.key.dev = overlays_.target(delta.key.dev);
        mount_bytes_.clear();
        for (const auto &delta : last_deltas_) {
            MountBytes &bytes = mount_bytes_[delta.key.dev];
            bytes.interval_write += delta.interval.write_bytes;
            bytes.total_write += delta.total.write_bytes;
            bytes.interval_growth += delta.interval.growth_bytes;
            bytes.interval_nospace += delta.interval.nospace_failures;
            bytes.total_nospace += delta.total.nospace_failures;
        }
    } else {
        if (mounts_moved)
            reload_mounts();
        if (!intervals_zero_) {
            for (auto &delta : last_deltas_)
                delta.interval = {};
            for (auto &[dev, bytes] : mount_bytes_)
                bytes.interval_write = bytes.interval_growth = bytes.interval_nospace = 0;
        }
    }
    intervals_zero_ = quiet;
    const auto now = std::chrono::steady_clock::now();
    const double interval_s = std::chrono::duration<double>(now - last_refresh_).count();
    last_refresh_ = now;

    WriteReport report;
    report.ts = unix_now_s();
    report.interval_s = interval_s;
    report.by = options.by;
    report.drops = drops_;
    // Quiet: nothing is active, so only the accumulated view has rows.
    if (!quiet || options.include_idle)
        report.rows = rows_of(last_deltas_, interval_s, options);
    // Rows further down keep the inode numbers the kernel gave, without a path.
    report.mounts = mount_reports(interval_s, steady_s(now), options.all_mounts);
    processes_.prune();
    last_report_ = report;
    last_report_.rows.clear();
    return report;
}

WriteReport WriteMonitor::regroup_last(const ReportOptions &options)
{
    WriteReport report = last_report_;
    report.by = options.by;
    report.rows = rows_of(last_deltas_, report.interval_s, options);
    return report;
}

std::vector<ReportRow> WriteMonitor::rows_of(const std::vector<WriterDelta> &deltas, double interval_s,
                                             const ReportOptions &options)
{
    std::vector<ReportRow> rows;
    for (const auto &group : group_writes(deltas, options.by)) {
        // A writer that only fails on a full disk is shown too: who keeps
        // trying is what its row is for (issue #20).
        const bool active = group.interval.write_bytes > 0 || group.interval.growth_bytes > 0 ||
                            group.interval.nospace_failures > 0;
        const bool ever = group.total.write_bytes > 0 || group.total.growth_bytes > 0 ||
                          group.total.nospace_failures > 0;
        if (!active && !(options.include_idle && ever))
            continue;
        ReportRow row;
        row.pid = group.key.tgid;
        row.processes = group.processes;
        row.exited = group.all_exited;
        // A group whose counters saw no exit is running: never name it after
        // an earlier process that had the same pid.
        const ProcessRecord *record =
            group.all_exited ? processes_.lookup(group.key.tgid) : processes_.lookup_running(group.key.tgid);
        if (record) {
            row.comm = record->identity.comm;
            row.exe = record->identity.exe;
            row.uid = record->identity.uid;
            row.start_boot_s = record->identity.start_boot_s;
        }
        row.cgroup_id = group.key.cgroup_id;
        if (cgroups_)
            row.cgroup = cgroups_->path_of(group.key.cgroup_id).value_or("");
        if (!row.cgroup.empty()) {
            const CgroupWorkload workload = describe_cgroup(row.cgroup);
            row.unit = workload.unit;
            row.container = workload.container_id;
            row.container_runtime = workload.runtime;
            // Named only when root made the container's cgroup (lookup_cgroup).
            if (const auto info = containers_->lookup_cgroup(row.cgroup)) {
                row.container_name = info->name;
                row.container_image = info->image;
                row.container_image_id = info->image_id;
                row.compose_project = info->compose_project;
                row.compose_service = info->compose_service;
            }
        }
        const DeviceNumber dev = DeviceNumber::from_kernel(group.key.dev);
        row.dev = dev.to_string();
        row.kernel_dev = group.key.dev;
        if (const MountEntry *mount = mounts_.find_by_device(dev)) {
            if (is_pseudo_filesystem(mount->fstype))
                continue;
            row.mount = mount->mount_point;
            row.fstype = mount->fstype;
        }
        row.write_bytes = group.interval.write_bytes;
        row.write_calls = group.interval.write_calls;
        row.total_write_calls = group.total.write_calls;
        row.write_bps = interval_s > 0 ? static_cast<double>(group.interval.write_bytes) / interval_s : 0;
        row.total_bytes = group.total.write_bytes;
        row.growth_bytes = group.interval.growth_bytes;
        row.growth_bps = interval_s > 0 ? static_cast<double>(group.interval.growth_bytes) / interval_s : 0;
        row.total_growth_bytes = group.total.growth_bytes;
        row.nospace_failures = group.interval.nospace_failures;
        row.total_nospace_failures = group.total.nospace_failures;
        row.files.clear();
        for (uint64_t ino : group.last_inodes)
            row.files.push_back({"", ino, false, 0});
        rows.push_back(std::move(row));
    }
    std::stable_sort(rows.begin(), rows.end(), [](const ReportRow &a, const ReportRow &b) {
        if (a.write_bps != b.write_bps)
            return a.write_bps > b.write_bps;
        if (a.growth_bps != b.growth_bps)
            return a.growth_bps > b.growth_bps;
        return a.total_bytes > b.total_bytes;
    });
    // Name the files of the rows shown first, lazily: a directory read per row.
    for (size_t i = 0; i < rows.size(); ++i) {
        ReportRow &row = rows[i];
        if (i >= options.rows_with_files) {
            if (row.files.size() > options.files_per_row)
                row.files.resize(options.files_per_row);
            continue;
        }
        std::vector<uint64_t> inodes;
        for (const auto &file : row.files)
            inodes.push_back(file.ino);
        if (row.pid && !row.exited) {
            const uint32_t dev = row.kernel_dev;
            row.files = files_written_by(
                static_cast<int>(row.pid), [this, dev](uint32_t file_dev) { return overlays_.target(file_dev) == dev; },
                inodes, options.files_per_row);
        }
        else if (row.files.size() > options.files_per_row)
            row.files.resize(options.files_per_row);
    }
    return rows;
}

std::vector<MountReport> WriteMonitor::mount_reports(double interval_s, double now_s, bool all_mounts)
{
    std::vector<MountReport> reports;
    std::unordered_set<uint32_t> seen;
    for (const auto &entry : mounts_.entries()) {
        const uint32_t dev = entry.dev.to_kernel();
        const auto written = mount_bytes_.find(dev);
        // A mount hidden by default stays hidden even with bytes on it (a
        // container's /dev/shm): its rows still name it.
        const bool listed = is_storage_mount(mounts_, entry, all_mounts) ||
                            (written != mount_bytes_.end() &&
                             (all_mounts || !hidden_by_default(entry.fstype, entry.mount_point)));
        if (seen.count(dev) || !listed)
            continue;
        // One row per filesystem: its first full mount (bind mounts share it).
        const MountEntry *primary = mounts_.find_by_device(entry.dev);
        if (primary != &entry)
            continue;
        seen.insert(dev);
        // Re-read when bytes landed on it this interval, and otherwise once
        // a second: a statfs per mount per refresh was a quarter of an idle
        // agent's time, and what we do not count (deletes, metadata) moves
        // usage slowly.
        const bool written_now = written != mount_bytes_.end() &&
                                 (written->second.interval_write > 0 || written->second.interval_growth > 0);
        std::optional<FilesystemUsage> usage;
        if (auto known = usage_read_.find(dev);
            !written_now && known != usage_read_.end() && now_s - known->second.read_s < kIdleUsageReadS) {
            usage = known->second.usage;
        } else {
            usage = read_filesystem_usage(entry.mount_point);
            if (!usage)
                continue;
            growth_.observe(dev, now_s, usage->used_bytes, usage->available_bytes);
            usage_read_[dev] = {*usage, now_s};
        }
        MountReport report;
        report.mount = entry.mount_point;
        report.dev = entry.dev.to_string();
        report.fstype = entry.fstype;
        report.source = entry.source;
        report.size_bytes = usage->size_bytes;
        report.used_bytes = usage->used_bytes;
        report.available_bytes = usage->available_bytes;
        report.used_pct = usage->used_pct();
        if (written != mount_bytes_.end()) {
            report.write_bytes = written->second.interval_write;
            report.total_bytes = written->second.total_write;
            report.growth_bytes = written->second.interval_growth;
            report.nospace_failures = written->second.interval_nospace;
            report.total_nospace_failures = written->second.total_nospace;
        }
        report.write_bps = interval_s > 0 ? static_cast<double>(report.write_bytes) / interval_s : 0;
        report.growth_bps = interval_s > 0 ? static_cast<double>(report.growth_bytes) / interval_s : 0;
        report.fill_bps = growth_.growth_bps(dev);
        report.eta_full_s = growth_.eta_full_s(dev);
        reports.push_back(std::move(report));
    }
    std::stable_sort(reports.begin(), reports.end(), [](const MountReport &a, const MountReport &b) {
        if (a.write_bps != b.write_bps)
            return a.write_bps > b.write_bps;
        return a.mount < b.mount;
    });
    return reports;
}

}  // namespace diskwatch
