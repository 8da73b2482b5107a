#include "recorder/explain.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <map>
#include <unordered_map>
#include <set>
#include <sstream>
#include <unordered_set>

#include "recorder/history.h"
#include "resolve/deleted_files.h"
#include "resolve/filesystems.h"
#include "resolve/mountinfo.h"
#include "resolve/prevention.h"
#include "resolve/space_walk.h"
#include "views/format.h"
#include "views/json_report.h"
#include "vocabulary/cgroup_workload.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

namespace {

using json = nlohmann::json;

// One writer of the mount over the history looked at.
struct Tally {
    std::string kind;  // processes: "process"; workloads: "unit", "container", "compose service", "cgroup"
    std::string name;
    ReportRow row;     // the latest row: who it is
    uint64_t write_bytes = 0, growth_bytes = 0, nospace_failures = 0;
    double first_seen = 0, last_seen = 0;
    double first_nospace = 0, last_nospace = 0;
};

// A file the recorded rows named.
struct FileTally {
    std::string path;
    uint64_t ino = 0;
    uint64_t first_size = 0, last_size = 0;
    double first_seen = 0, last_seen = 0;
    bool deleted = false;
    std::set<std::string> writers;
    std::set<uint32_t> writer_pids;
    // The growth of the windows where it was its writer's only file: the
    // writer's growth is the file's. Its size when first named misses what
    // was written before (files are named at most once a second).
    uint64_t attributed_growth = 0;
    uint32_t last_writer_pid = 0;  // the writers set is only touched when the writer changes
};

void tally(Tally &into, const ReportRow &row, uint64_t nospace, const RecordedWindow &window)
{
    if (into.first_seen == 0 && (row.write_bytes || row.growth_bytes))
        into.first_seen = window.start;
    if (row.write_bytes || row.growth_bytes)
        into.last_seen = window.ts;
    into.write_bytes += row.write_bytes;
    into.growth_bytes += row.growth_bytes;
    if (nospace) {
        if (into.first_nospace == 0)
            into.first_nospace = window.start;
        into.last_nospace = window.ts;
    }
    into.nospace_failures += nospace;
    into.row = row;
}

std::string short_id(const std::string &id) { return id.substr(0, 12); }

// What a cgroup row is, in the operator's words.
std::pair<std::string, std::string> workload_of(const ReportRow &row)
{
    if (!row.compose_service.empty())
        return {"compose service", row.compose_project + "/" + row.compose_service};
    if (!row.container.empty())
        return {"container", row.container_name.empty() ? short_id(row.container) : row.container_name};
    if (!row.unit.empty())
        return {"unit", row.unit};
    return {"cgroup", row.cgroup.empty() ? std::string("/") : row.cgroup};
}

json when_json(double unix_s) { return unix_s > 0 ? json(rfc3339_utc(unix_s)) : json(nullptr); }

json process_json(const Tally &t)
{
    json out = {{"pid", t.row.pid},
                {"write_bytes", t.write_bytes},
                {"growth_bytes", t.growth_bytes},
                {"nospace_failures", t.nospace_failures},
                {"first_seen", when_json(t.first_seen)},
                {"last_seen", when_json(t.last_seen)},
                {"unit", t.row.unit.empty() ? json(nullptr) : json(t.row.unit)},
                {"exited", t.row.exited}};
    put_name(out, "comm", t.row.comm);
    put_name(out, "exe", t.row.exe);
    put_name(out, "cgroup", t.row.cgroup);
    if (!t.row.container.empty()) {
        json container = {{"id", t.row.container}};
        put_name(container, "name", t.row.container_name);
        put_name(container, "compose_project", t.row.compose_project);
        put_name(container, "compose_service", t.row.compose_service);
        out["container"] = container;
    } else {
        out["container"] = nullptr;
    }
    return out;
}

json workload_json(const Tally &t)
{
    json out = {{"kind", t.kind},
                {"write_bytes", t.write_bytes},
                {"growth_bytes", t.growth_bytes},
                {"nospace_failures", t.nospace_failures},
                {"first_seen", when_json(t.first_seen)},
                {"last_seen", when_json(t.last_seen)}};
    put_name(out, "name", t.name);
    put_name(out, "cgroup", t.row.cgroup);
    return out;
}

template <typename Less>
std::vector<const Tally *> top_of(const std::map<std::string, Tally> &tallies, size_t n, Less less,
                                  uint64_t Tally::*must_have)
{
    std::vector<const Tally *> out;
    for (const auto &[key, t] : tallies)
        if (t.*must_have > 0)
            out.push_back(&t);
    std::stable_sort(out.begin(), out.end(), [&](const Tally *a, const Tally *b) { return less(*a, *b); });
    if (out.size() > n)
        out.resize(n);
    return out;
}

// A name as a shell word: as it is when it is made of the characters unit,
// container and project names are made of, else single-quoted. Names come
// from whoever made the cgroup or the container: a command in the advice is
// copied into a root shell.
std::string shell_word(const std::string &name)
{
    const bool plain = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("@%+=:,./_-", c) != nullptr;
    }) && name[0] != '-';
    if (plain)
        return name;
    std::string quoted = "'";
    for (char c : name)
        quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

// One event in a line: what, and of whom.
std::string event_line(const json &e)
{
    auto text = [&](const json &object, const char *key) {
        const auto it = object.find(key);
        return it != object.end() && it->is_string() ? terminal_safe(get_name(object, key)) : std::string();
    };
    std::string line = text(e, "event");
    for (const char *key : {"state", "action", "mechanism"})
        if (auto value = text(e, key); !value.empty())
            line += " " + value;
    if (auto rule = text(e, "rule"); !rule.empty())
        line += " (rule " + rule + ")";
    if (auto process = e.find("process"); process != e.end() && process->is_object() && process->contains("pid"))
        line += " " + text(*process, "comm") + " (pid " + process->value("pid", json(0)).dump() + ")";
    if (auto mount = e.find("mount"); mount != e.end() && mount->is_object()) {
        if (auto used = mount->find("used_pct"); used != mount->end() && used->is_number())
            line += ", " + std::to_string(static_cast<int>(used->get<double>())) + "% used";
        if (auto eta = mount->find("eta_full_s"); eta != mount->end() && eta->is_number())
            line += ", full in " + human_duration(eta->get<double>());
    }
    return line;
}

struct MountChoice {
    MountEntry entry;
    std::string dev;  // "major:minor"
};

std::optional<MountChoice> choose_mount(const ExplainOptions &options, std::string *error)
{
    const MountTable table = MountTable::load();
    if (!options.mount.empty()) {
        struct stat st {};
        if (::stat(options.mount.c_str(), &st) != 0) {
            *error = "cannot find " + options.mount + ": " + errno_text(errno);
            return std::nullopt;
        }
        const DeviceNumber dev {major(st.st_dev), minor(st.st_dev)};
        const MountEntry *entry = table.find_by_device(dev);
        if (!entry) {
            *error = "no mount of " + options.mount + " (device " + dev.to_string() + ") in this mount table";
            return std::nullopt;
        }
        return MountChoice {*entry, dev.to_string()};
    }
    // The fullest disk mounted now: a filesystem on a device (or a pool),
    // not one of the mounts the views hide (overlays, snaps, pseudo).
    const MountEntry *best = nullptr;
    double best_pct = -1;
    for (const auto &entry : table.entries()) {
        const bool disk = entry.source.rfind("/dev/", 0) == 0 || entry.fstype == "zfs" || entry.fstype == "btrfs";
        if (!disk || !table.is_visible(entry) || hidden_by_default(entry.fstype, entry.mount_point))
            continue;
        const auto usage = read_filesystem_usage(entry.mount_point);
        if (usage && usage->size_bytes > 0 && usage->used_pct() > best_pct) {
            best_pct = usage->used_pct();
            best = &entry;
        }
    }
    if (!best)
        best = table.find_by_mount_point("/");
    if (!best) {
        *error = "no disk in the mount table: name one (explain MOUNT)";
        return std::nullopt;
    }
    return MountChoice {*best, best->dev.to_string()};
}

// Whether `path` is on the device `dev` ("major:minor").
bool on_device(const std::string &path, const std::string &dev)
{
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && DeviceNumber {major(st.st_dev), minor(st.st_dev)}.to_string() == dev;
}

bool looks_like_a_log(const std::string &path)
{
    auto ends_with = [&](std::string_view suffix) {
        return path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    return path.rfind("/var/log/", 0) == 0 || path.find("/log/") != std::string::npos ||
           path.find("/logs/") != std::string::npos || ends_with(".log") || ends_with(".json") || ends_with(".out");
}

json finding(std::string kind, const std::string &subject, std::string text, std::string fix)
{
    json out = {{"kind", std::move(kind)}, {"finding", std::move(text)}, {"fix", std::move(fix)}};
    put_name(out, "subject", subject);
    return out;
}

// What prevention is missing, where the machine's configuration says so.
json missing_prevention(const ExplainOptions &options, const std::string &dev, const std::vector<std::string> &growing_logs,
                        const std::vector<const Tally *> &workloads)
{
    json findings = json::array();
    // A growing log that no logrotate rule covers.
    const LogrotateConfig logrotate = read_logrotate_config(options.root);
    for (const auto &path : growing_logs)
        if (!logrotate_match(logrotate, path))
            findings.push_back(finding("logrotate", path, "no logrotate rule covers " + path + ", which grew",
                                       "add a rule for it in /etc/logrotate.d/ (size or daily, rotate N, compress), "
                                       "unless its writer rotates it itself"));
    // Docker's json-file logs without max-size, for the containers that wrote here.
    const std::string docker_root = options.docker_root;
    const bool docker_here = on_device(docker_root, dev);
    const DockerDaemonLogging daemon = read_docker_daemon_logging(options.root);
    std::set<std::string> containers_seen;
    for (const Tally *t : workloads) {
        const std::string &id = t->row.container;
        if (id.empty() || !containers_seen.insert(id).second)
            continue;
        const ContainerLogging logging = read_container_logging(id, docker_root);
        if (logging.found && logging.log_driver == "json-file" && !logging.max_size)
            findings.push_back(finding("docker-log", t->name,
                                       "container " + t->name + " logs with json-file and no max-size: its log "
                                       "under " + docker_root + "/containers/ grows without end",
                                       "set log-opts max-size (and max-file) in /etc/docker/daemon.json, or "
                                       "logging: options: max-size in its compose file, then recreate the container"));
    }
    if (docker_here && daemon.log_driver == "json-file" && !daemon.max_size)
        findings.push_back(finding("docker-log", "/etc/docker/daemon.json",
                                   "Docker's default logging (json-file) has no max-size here: any container's "
                                   "output can fill " + docker_root,
                                   "add \"log-opts\": {\"max-size\": \"50m\", \"max-file\": \"3\"} to "
                                   "/etc/docker/daemon.json and restart dockerd (new containers get it)"));
    // journald without a cap of its own, when its journal is on this disk.
    const JournaldConfig journald = read_journald_config(options.root);
    if (journald.persistent && !journald.system_max_use && on_device("/var/log/journal", dev))
        findings.push_back(finding("journald", "/etc/systemd/journald.conf",
                                   "journald keeps its journal on this disk with no SystemMaxUse=: it may take 10% "
                                   "of the filesystem (at most 4 GiB)",
                                   "set SystemMaxUse= (e.g. 1G) in /etc/systemd/journald.conf.d/size.conf and "
                                   "restart systemd-journald"));
    // Services that filled the disk with no quota on their logs directory.
    const auto systemd = installed_systemd_version(options.root);
    for (const Tally *t : workloads) {
        if (t->kind != "unit" || t->growth_bytes == 0 || t->name.find(".service") == std::string::npos)
            continue;
        const UnitLogsDirectory unit = read_unit_logs_directory(t->name, options.root);
        if (!unit.unit_found || unit.logs_directory_quota)
            continue;
        if (systemd && *systemd >= kLogsDirectoryQuotaSinceSystemd)
            findings.push_back(finding("logs-quota", t->name,
                                       t->name + " has no LogsDirectoryQuota=",
                                       "give it LogsDirectory= and LogsDirectoryQuota= (e.g. 10G) in a drop-in "
                                       "(systemctl edit " + shell_word(t->name) + ")"));
        else
            findings.push_back(finding("logs-quota", t->name,
                                       t->name + " has no cap on what it writes; this systemd (" +
                                           (systemd ? std::to_string(*systemd) : std::string("unknown version")) +
                                           ") has no LogsDirectoryQuota= (systemd 258 and later)",
                                       "cap its logs with a logrotate rule or its own settings; a policy rule in "
                                       "ebpf-diskwatch can throttle it (docs/policy.md)"));
    }
    return findings;
}

}  // namespace

std::optional<json> explain(const ExplainOptions &options, std::string *error)
{
    const auto chosen = choose_mount(options, error);
    if (!chosen)
        return std::nullopt;
    const std::string &dev = chosen->dev;
    const std::string &mount_point = chosen->entry.mount_point;
    json answer;

    // ---- the mount, now and as recorded ----
    json mount = {{"dev", dev}, {"fstype", chosen->entry.fstype}};
    put_name(mount, "mount", mount_point);
    put_name(mount, "source", chosen->entry.source);
    if (const auto usage = read_filesystem_usage(mount_point)) {
        mount["size_bytes"] = usage->size_bytes;
        mount["used_bytes"] = usage->used_bytes;
        mount["available_bytes"] = usage->available_bytes;
        mount["used_pct"] = std::round(usage->used_pct() * 10) / 10;
    }
    // ---- who filled it ----
    std::optional<MountReport> first_recorded, last_recorded;
    std::map<std::string, Tally> processes, workloads;
    std::unordered_map<std::string, FileTally> files;  // by inode (or path when unknown)
    size_t windows_on_mount = 0, windows = 0;
    json events = json::array();
    // Each window folded in as it is read (time order): a whole store in bounded memory.
    const History history = load_history(
        options.recorder_dir, options.since_s, options.now_s, HistoryResolution::fewest, [&](RecordedWindow &&window) {
        ++windows;
        for (const auto &event : window.events) {
            const std::string type = event.value("event", "");
            const bool wanted = type == "action" || type == "runaway" || type == "mount.usage" || type == "mount.eta";
            const auto about = event.find("mount");
            const bool here = about == event.end() || !about->is_object() || about->value("dev", dev) == dev;
            if (wanted && here) {
                events.push_back(event);
                if (events.size() > 40)
                    events.erase(events.begin(), events.begin() + 20);
            }
        }
        const WriteReport by_process = window.report(GroupBy::process);
        for (const auto &recorded : by_process.mounts)
            if (recorded.dev == dev) {
                if (!first_recorded)
                    first_recorded = recorded;
                last_recorded = recorded;
            }
        bool any = false;
        for (size_t i = 0; i < by_process.rows.size(); ++i) {
            const ReportRow &row = by_process.rows[i];
            if (row.dev != dev)
                continue;
            any = true;
            const uint64_t nospace = row.nospace_failures;
            Tally &t = processes[std::to_string(row.pid) + "\n" + row.exe + "\n" + row.comm];
            t.kind = "process";
            tally(t, row, nospace, window);
            for (const auto &file : row.files) {
                if (file.path.empty() && file.ino == 0)
                    continue;
                const std::string key = file.ino ? std::to_string(file.ino) : file.path;
                FileTally &f = files[key];
                if (f.first_seen == 0) {
                    f.first_seen = window.ts;
                    f.first_size = file.size_bytes;
                }
                f.last_seen = window.ts;
                f.last_size = file.size_bytes;
                if (row.files.size() == 1)
                    f.attributed_growth += row.growth_bytes;
                f.ino = file.ino;
                f.deleted = file.deleted;
                if (!file.path.empty())
                    f.path = file.path;
                if (f.last_writer_pid != row.pid || f.writers.empty()) {
                    f.writers.insert(row.comm + " (" + std::to_string(row.pid) + ")");
                    f.writer_pids.insert(row.pid);
                    f.last_writer_pid = row.pid;
                }
            }
        }
        windows_on_mount += any;
        const WriteReport by_cgroup = window.report(GroupBy::cgroup);
        for (size_t i = 0; i < by_cgroup.rows.size(); ++i) {
            const ReportRow &row = by_cgroup.rows[i];
            if (row.dev != dev)
                continue;
            const auto [kind, name] = workload_of(row);
            Tally &t = workloads[kind + "\n" + name];
            t.kind = kind;
            t.name = name;
            const uint64_t nospace = row.nospace_failures;
            tally(t, row, nospace, window);
        }
    });
    // The agent's own writes (its events, its recorder's reservation) are
    // not what filled a disk: it reserved that space knowingly, and the
    // record says how much (record.bytes_on_disk).
    std::set<uint32_t> agent_pids;
    for (const auto &start : history.starts)
        agent_pids.insert(static_cast<uint32_t>(start.pid));
    // ...and out of their cgroup's workload (ebpf-diskwatch.service, or
    // the cgroup a test runs it in, which other writers may share).
    std::map<std::string, std::pair<uint64_t, uint64_t>> agent_bytes;  // cgroup -> (written, grown)
    for (const auto &[key, t] : processes)
        if (agent_pids.count(t.row.pid)) {
            agent_bytes[t.row.cgroup].first += t.write_bytes;
            agent_bytes[t.row.cgroup].second += t.growth_bytes;
        }
    for (auto &[key, t] : workloads)
        if (auto it = agent_bytes.find(t.row.cgroup); it != agent_bytes.end()) {
            t.write_bytes -= std::min(t.write_bytes, it->second.first);
            t.growth_bytes -= std::min(t.growth_bytes, it->second.second);
        }
    std::erase_if(processes, [&](const auto &entry) { return agent_pids.count(entry.second.row.pid) > 0; });
    std::erase_if(files, [&](const auto &entry) {
        const auto &pids = entry.second.writer_pids;
        return !pids.empty() && std::all_of(pids.begin(), pids.end(), [&](uint32_t pid) { return agent_pids.count(pid) > 0; });
    });
    if (first_recorded && last_recorded) {
        mount["recorded_used_bytes_first"] = first_recorded->used_bytes;
        mount["recorded_used_bytes_last"] = last_recorded->used_bytes;
        mount["fill_bps"] = last_recorded->fill_bps ? json(std::round(*last_recorded->fill_bps)) : json(nullptr);
        mount["eta_full_s"] = last_recorded->eta_full_s ? json(std::round(*last_recorded->eta_full_s)) : json(nullptr);
    }
    answer["mount"] = mount;
    auto by_growth = [](const Tally &a, const Tally &b) { return a.growth_bytes > b.growth_bytes; };
    auto by_bytes = [](const Tally &a, const Tally &b) { return a.write_bytes > b.write_bytes; };
    json writers = {{"by_growth", json::array()}, {"by_bytes", json::array()}, {"workloads_by_growth", json::array()},
                    {"workloads_by_bytes", json::array()}};
    for (const Tally *t : top_of(processes, options.top, by_growth, &Tally::growth_bytes))
        writers["by_growth"].push_back(process_json(*t));
    for (const Tally *t : top_of(processes, options.top, by_bytes, &Tally::write_bytes))
        writers["by_bytes"].push_back(process_json(*t));
    for (const Tally *t : top_of(workloads, options.top, by_growth, &Tally::growth_bytes))
        writers["workloads_by_growth"].push_back(workload_json(*t));
    for (const Tally *t : top_of(workloads, options.top, by_bytes, &Tally::write_bytes))
        writers["workloads_by_bytes"].push_back(workload_json(*t));
    answer["writers"] = writers;

    // ---- who keeps failing for want of space ----
    json nospace = json::array();
    for (const Tally *t : top_of(processes, options.top,
                                 [](const Tally &a, const Tally &b) { return a.nospace_failures > b.nospace_failures; },
                                 &Tally::nospace_failures)) {
        json entry = process_json(*t);
        entry["first_failure"] = when_json(t->first_nospace);
        entry["last_failure"] = when_json(t->last_nospace);
        nospace.push_back(entry);
    }
    answer["failing_writers"] = nospace;

    // ---- space held by deleted files still open, and who holds each ----
    const uint32_t kernel_dev = chosen->entry.dev.to_kernel();
    DeletedFilesLimits deleted_limits;
    deleted_limits.max_files = 1'000'000;  // the total they hold must count them all
    const DeletedFilesScan deleted = find_deleted_open_files(
        options.proc_root, [kernel_dev](uint32_t file_dev) { return file_dev == kernel_dev; }, deleted_limits);
    json deleted_open = json::array();
    uint64_t deleted_bytes = 0;
    for (const auto &file : deleted.files) {
        deleted_bytes += file.allocated_bytes;
        if (deleted_open.size() >= options.top)
            continue;
        json entry = {{"ino", file.inode}, {"size_bytes", file.size_bytes}, {"allocated_bytes", file.allocated_bytes},
                      {"holders", json::array()}};
        put_name(entry, "path", file.path);
        for (const auto &holder : file.holders) {
            json h = {{"pid", holder.pid}, {"fds", holder.fds}, {"writable", holder.writable}};
            put_name(h, "comm", holder.comm);
            put_name(h, "cgroup", holder.cgroup);
            const CgroupWorkload workload = describe_cgroup(holder.cgroup);
            h["unit"] = workload.unit.empty() ? json(nullptr) : json(workload.unit);
            h["container"] = workload.container_id.empty() ? json(nullptr) : json(workload.container_id);
            entry["holders"].push_back(h);
        }
        deleted_open.push_back(entry);
    }
    answer["deleted_open"] = deleted_open;
    answer["deleted_open_bytes"] = deleted_bytes;
    answer["deleted_open_files"] = deleted.files.size();
    answer["deleted_open_truncated"] = deleted.truncated;
    answer["deleted_open_notes"] = deleted.notes;

    // ---- where the bytes are now: the recorded files, then a bounded walk ----
    std::unordered_set<uint64_t> unnamed;
    for (const auto &[key, f] : files)
        if (f.path.empty() && f.ino)
            unnamed.insert(f.ino);
    std::error_code canonical_error;
    const std::string recorder_path = std::filesystem::weakly_canonical(options.recorder_dir, canonical_error).string();
    // The recorder's own store is not walked: it is reserved, and its size is record.bytes_on_disk.
    const SpaceWalk walk =
        walk_space(mount_point, options.walk_entries, options.walk_budget_s, options.top * 2, unnamed, recorder_path);
    struct FileNow {
        const FileTally *file;
        std::string path;
        bool exists = false;
        uint64_t size_now = 0, allocated_now = 0;
        int64_t growth = 0;
    };
    std::vector<FileNow> file_rows;
    for (const auto &[key, f] : files) {
        FileNow now {&f, f.path};
        if (now.path.empty())
            if (auto named = walk.named.find(f.ino); named != walk.named.end())
                now.path = named->second;
        struct stat st {};
        if (!now.path.empty() && ::stat(now.path.c_str(), &st) == 0 && (f.ino == 0 || st.st_ino == f.ino)) {
            now.exists = true;
            now.size_now = static_cast<uint64_t>(st.st_size);
            now.allocated_now = static_cast<uint64_t>(st.st_blocks) * 512;
        }
        const uint64_t last = now.exists ? now.size_now : f.last_size;
        now.growth = std::max(static_cast<int64_t>(last) - static_cast<int64_t>(f.first_size),
                              static_cast<int64_t>(std::min<uint64_t>(f.attributed_growth, last)));
        file_rows.push_back(std::move(now));
    }
    std::stable_sort(file_rows.begin(), file_rows.end(), [](const FileNow &a, const FileNow &b) {
        if (a.growth != b.growth)
            return a.growth > b.growth;
        return a.size_now > b.size_now;
    });
    json recorded_files = json::array();
    std::map<std::string, int64_t> directory_growth;
    for (const auto &now : file_rows) {
        if (!now.path.empty() && now.growth > 0) {
            const auto slash = now.path.rfind('/');
            directory_growth[slash == 0 ? "/" : now.path.substr(0, slash)] += now.growth;
        }
        if (recorded_files.size() >= options.top)
            continue;
        // A recorded file deleted since, whose space a process still holds
        // (a rotated log a shipper keeps open): the same inode as a deleted_open entry.
        const DeletedFile *held = nullptr;
        for (const auto &file : deleted.files)
            if (!now.exists && now.file->ino && file.inode == now.file->ino)
                held = &file;
        json entry = {{"ino", now.file->ino},
                      {"exists", now.exists},
                      {"deleted", now.file->deleted || held != nullptr},
                      {"held_open_by", json::array()},
                      {"size_bytes", now.exists ? now.size_now : now.file->last_size},
                      {"allocated_bytes", now.exists ? json(now.allocated_now) : json(nullptr)},
                      {"growth_bytes", now.growth},
                      {"first_seen", when_json(now.file->first_seen)},
                      {"last_seen", when_json(now.file->last_seen)},
                      {"named_by", now.file->path.empty() ? (now.path.empty() ? "none" : "walk") : "record"},
                      {"writers", json::array()}};
        if (now.path.empty())
            entry["path"] = nullptr;
        else
            put_name(entry, "path", now.path);
        if (held)
            for (const auto &holder : held->holders)
                entry["held_open_by"].push_back(holder.pid);
        for (const auto &writer : now.file->writers) {
            json name;
            put_name(name, "name", writer);
            entry["writers"].push_back(name);
        }
        recorded_files.push_back(entry);
    }
    std::vector<std::pair<std::string, int64_t>> directories(directory_growth.begin(), directory_growth.end());
    std::stable_sort(directories.begin(), directories.end(), [](const auto &a, const auto &b) { return a.second > b.second; });
    json growing_directories = json::array();
    for (size_t i = 0; i < directories.size() && i < options.top; ++i) {
        json entry = {{"growth_bytes", directories[i].second}};
        put_name(entry, "path", directories[i].first);
        growing_directories.push_back(entry);
    }
    json walked = {{"entries", walk.entries},
                   {"truncated", walk.truncated},
                   {"seconds", std::round(walk.seconds * 100) / 100},
                   {"allocated_bytes", walk.allocated_bytes},
                   {"largest_files", json::array()},
                   {"largest_directories", json::array()}};
    for (const auto &entry : walk.files) {
        json out = {{"allocated_bytes", entry.allocated_bytes}, {"size_bytes", entry.size_bytes},
                    {"modified", when_json(entry.mtime)}};
        put_name(out, "path", entry.path);
        walked["largest_files"].push_back(out);
    }
    for (const auto &entry : walk.directories) {
        json out = {{"allocated_bytes", entry.allocated_bytes}};
        put_name(out, "path", entry.path);
        walked["largest_directories"].push_back(out);
    }
    answer["files"] = {{"growing", recorded_files}, {"growing_directories", growing_directories}, {"walk", walked}};


    // ---- what prevention is missing ----
    std::vector<std::string> growing_logs;
    for (const auto &now : file_rows)
        if (now.exists && now.growth > 0 && looks_like_a_log(now.path))
            growing_logs.push_back(now.path);
    for (const auto &entry : walk.files)
        if (looks_like_a_log(entry.path) && entry.mtime >= options.since_s &&
            std::find(growing_logs.begin(), growing_logs.end(), entry.path) == growing_logs.end())
            growing_logs.push_back(entry.path);
    if (growing_logs.size() > options.top)
        growing_logs.resize(options.top);
    const auto growing_workloads = top_of(workloads, options.top, by_growth, &Tally::growth_bytes);
    answer["prevention"] = missing_prevention(options, dev, growing_logs, growing_workloads);

    // ---- what to do, in plain words ----
    json advice = json::array();
    const json &growers = answer["writers"]["by_growth"];
    if (mount.contains("used_pct") && mount["used_pct"].get<double>() >= 95)
        advice.push_back((mount["used_pct"].get<double>() >= 99.95 ? "The disk is full (" : "The disk is nearly full (") +
                         human_bytes(mount.value("available_bytes", 0.0)) +
                         " free): stop the cause first (below), then free space.");
    if (windows_on_mount == 0)
        advice.push_back("The flight recorder holds no writes to this mount since " + rfc3339_utc(options.since_s) +
                         ": run the agent (systemctl enable --now ebpf-diskwatch) so that the next incident explains "
                         "itself; until then the largest files below are the best lead.");
    if (!growers.empty()) {
        const json &p = growers[0];
        std::string who = get_name(p, "comm") + " (pid " + std::to_string(p.value("pid", 0)) + ")";
        if (p["unit"].is_string())
            who += ", unit " + p["unit"].get<std::string>();
        if (p["container"].is_object())
            who += ", container " + get_name(p["container"], "name");
        advice.push_back("The writer that grew its files the most is " + who + ": " +
                         human_bytes(static_cast<double>(p.value("growth_bytes", uint64_t {0}))) + " since " +
                         p.value("first_seen", std::string("-")) + ".");
    }
    // The root cgroup is everything outside a unit or container: no advice to stop it.
    if (!growing_workloads.empty() && !(growing_workloads.front()->kind == "cgroup" && growing_workloads.front()->name == "/")) {
        const Tally &t = *growing_workloads.front();
        std::string how;
        if (t.kind == "unit")
            how = "stop it (systemctl stop " + shell_word(t.name) + ") or cap it";
        else if (t.kind == "compose service")
            how = "stop it (docker compose -p " + shell_word(t.row.compose_project) + " stop " +
                  shell_word(t.row.compose_service) + ") or cap it";
        else if (t.kind == "container")
            how = "stop it (docker stop " + shell_word(t.name) + ") or cap its logs";
        else
            how = "stop the processes of cgroup " + t.name + ", or let a policy rule throttle them";
        advice.push_back(t.kind + " " + t.name + " grew its files by " + human_bytes(static_cast<double>(t.growth_bytes)) +
                         " since " + rfc3339_utc(t.first_seen) + ": " + how + ".");
    }
    if (!file_rows.empty() && file_rows.front().growth > 0 && file_rows.front().exists)
        advice.push_back("The fastest-growing file is " + file_rows.front().path + " (+" +
                         human_bytes(static_cast<double>(file_rows.front().growth)) +
                         "): if a process still holds it open, empty it in place (truncate -s 0) or rotate it "
                         "rather than delete it: a deleted file that is still open keeps its space.");
    if (deleted_bytes > 0 && !deleted.files.empty()) {
        std::set<std::string> holders;
        for (const auto &file : deleted.files)
            for (const auto &holder : file.holders) {
                const CgroupWorkload workload = describe_cgroup(holder.cgroup);
                holders.insert(holder.comm + " (pid " + std::to_string(holder.pid) + (workload.unit.empty() ? "" : ", " + workload.unit) + ")");
            }
        std::string list;
        for (const auto &holder : holders)
            list += (list.empty() ? "" : ", ") + holder;
        advice.push_back(std::to_string(deleted.files.size()) + " deleted file(s) still hold " +
                         human_bytes(static_cast<double>(deleted_bytes)) + ": restart (or signal to reopen its logs) " +
                         list + ". Those hold the space, often a log shipper rather than the writer; deleting more "
                         "files will not free it.");
    }
    // A writer refused for want of space is a victim, unless it is also one
    // of those that filled the disk (a logger keeps trying once it is full).
    std::set<uint32_t> causes;
    const uint64_t top_growth = growers.empty() ? 0 : growers[0].value("growth_bytes", uint64_t {0});
    for (const auto &p : growers)
        if (top_growth > 0 && p.value("growth_bytes", uint64_t {0}) * 10 >= top_growth)
            causes.insert(p.value("pid", 0u));
    for (const auto &p : answer["failing_writers"]) {
        const std::string who = get_name(p, "comm") + " (pid " + std::to_string(p.value("pid", 0)) + ")";
        const std::string refused = std::to_string(p.value("nospace_failures", 0));
        if (causes.count(p.value("pid", 0u)))
            advice.push_back(who + " filled the disk and keeps trying: " + refused +
                             " of its writes were refused for want of space. Stop it before freeing space, or "
                             "it fills what you free.");
        else
            advice.push_back(who + " failed " + refused +
                             " writes for want of space: a victim, not the cause; check it once space is back.");
    }
    for (const auto &f : answer["prevention"])
        advice.push_back("Prevent it: " + f.value("fix", std::string()) + " (" + f.value("finding", std::string()) + ").");
    answer["advice"] = advice;

    // ---- what the agent saw and did ----
    if (events.size() > 20)
        events.erase(events.begin(), events.end() - 20);
    answer["events"] = events;

    // ---- the record itself ----
    json record = {{"dir", options.recorder_dir},
                   {"since", when_json(options.since_s)},
                   {"until", when_json(options.now_s)},
                   {"windows", windows},
                   {"windows_on_mount", windows_on_mount},
                   {"oldest", history.oldest ? when_json(*history.oldest) : json(nullptr)},
                   {"newest", history.newest ? when_json(*history.newest) : json(nullptr)},
                   {"bytes_on_disk", history.bytes_on_disk},
                   {"agent_starts", json::array()},
                   {"warnings", history.warnings}};
    for (const auto &start : history.starts)
        if (start.ts >= options.since_s)
            record["agent_starts"].push_back({{"ts", when_json(start.ts)}, {"pid", start.pid}, {"version", start.version}});
    answer["record"] = record;
    return answer;
}

namespace {

// After a recorded file's line: gone, or deleted and still held (by whom).
std::string held_note(const json &file)
{
    if (file.value("exists", false))
        return "";
    const auto holders = file.value("held_open_by", json::array());
    if (holders.empty())
        return "  [gone]";
    std::string pids;
    for (const auto &pid : holders)
        pids += (pids.empty() ? "" : ", ") + pid.dump();
    return "  [deleted, its space still held by pid " + pids + "]";
}

}  // namespace

std::string explain_text(const json &answer)
{
    std::ostringstream out;
    auto name = [](const json &object, const std::string &key) { return terminal_safe(get_name(object, key)); };
    auto bytes = [](const json &object, const char *key) {
        const auto it = object.find(key);
        return it != object.end() && it->is_number() ? human_bytes(it->get<double>()) : std::string("-");
    };
    auto since = [](const json &object, const char *key) {
        const auto it = object.find(key);
        return it != object.end() && it->is_string() ? it->get<std::string>() : std::string("-");
    };
    const json &mount = answer["mount"];
    out << "Mount " << name(mount, "mount") << " (" << mount.value("fstype", "") << " on " << name(mount, "source")
        << ", " << mount.value("dev", "") << ")";
    if (mount.contains("used_pct"))
        out << ": " << mount["used_pct"].get<double>() << "% used, " << bytes(mount, "available_bytes") << " free of "
            << bytes(mount, "size_bytes");
    out << "\n";
    const json &record = answer["record"];
    out << "Flight record: " << record.value("windows_on_mount", 0) << " windows with writes here, since "
        << since(record, "since");
    if (!record["oldest"].is_null())
        out << " (the record reaches back to " << record["oldest"].get<std::string>() << ")";
    out << "\n";
    for (const auto &start : record.value("agent_starts", json::array()))
        out << "  the agent (pid " << start.value("pid", 0) << ") started recording at " << since(start, "ts") << "\n";
    for (const auto &warning : record.value("warnings", json::array()))
        out << "  warning: " << terminal_safe(warning.get<std::string>()) << "\n";

    auto process_line = [&](const json &p) {
        std::string who = name(p, "comm") + " (pid " + std::to_string(p.value("pid", 0)) + ")";
        if (p.contains("unit") && p["unit"].is_string())
            who += " unit " + terminal_safe(p["unit"].get<std::string>());
        if (p.contains("container") && p["container"].is_object()) {
            const json &c = p["container"];
            const std::string service = get_name(c, "compose_service");
            who += service.empty() ? " container " + name(c, "name")
                                   : " compose " + name(c, "compose_project") + "/" + terminal_safe(service);
        }
        return who;
    };
    out << "\nWho filled it (by growth of the files they wrote):\n";
    const json &writers = answer["writers"];
    if (writers["by_growth"].empty() && writers["by_bytes"].empty())
        out << "  nobody recorded: no flight record of writes to this mount in that time\n";
    for (const auto &p : writers["by_growth"])
        out << "  " << bytes(p, "growth_bytes") << " grown, " << bytes(p, "write_bytes") << " written  "
            << process_line(p) << ", writing since " << since(p, "first_seen") << "\n";
    out << "By bytes written:\n";
    for (const auto &p : writers["by_bytes"])
        out << "  " << bytes(p, "write_bytes") << "  " << process_line(p) << ", since " << since(p, "first_seen") << "\n";
    out << "By unit, container or Compose service:\n";
    for (const auto &w : writers["workloads_by_growth"])
        out << "  " << bytes(w, "growth_bytes") << " grown, " << bytes(w, "write_bytes") << " written  "
            << w.value("kind", "") << " " << name(w, "name") << ", since " << since(w, "first_seen") << "\n";

    const json &files = answer["files"];
    out << "\nWhere the bytes are now:\n";
    for (const auto &f : files["growing"]) {
        const std::string path = f["path"].is_null() ? "inode " + std::to_string(f.value("ino", 0)) + " (no name: opened "
                                                                                    "and closed between two refreshes)"
                                                     : name(f, "path");
        out << "  " << bytes(f, "size_bytes") << " (" << (f.value("growth_bytes", 0) >= 0 ? "+" : "")
            << human_bytes(static_cast<double>(f.value("growth_bytes", int64_t {0}))) << ")  " << path
            << held_note(f) << "\n";
    }
    for (const auto &d : files["growing_directories"])
        out << "  directory " << name(d, "path") << " grew " << bytes(d, "growth_bytes") << "\n";
    const json &walk = files["walk"];
    out << "  largest on the disk now (a walk of " << walk.value("entries", 0) << " entries"
        << (walk.value("truncated", false) ? ", stopped at its limit" : "") << "):\n";
    for (const auto &d : walk["largest_directories"])
        out << "    " << bytes(d, "allocated_bytes") << "  " << name(d, "path") << "/\n";
    for (const auto &f : walk["largest_files"])
        out << "    " << bytes(f, "allocated_bytes") << "  " << name(f, "path") << "\n";

    if (answer.contains("deleted_open")) {
        out << "\nSpace held by deleted files still open:\n";
        if (answer["deleted_open"].empty())
            out << "  none\n";
        else if (answer.value("deleted_open_files", size_t {0}) > answer["deleted_open"].size() ||
                 answer.value("deleted_open_truncated", false))
            out << "  " << answer.value("deleted_open_files", size_t {0}) << " files in all hold "
                << bytes(answer, "deleted_open_bytes")
                << (answer.value("deleted_open_truncated", false) ? " (at least: the scan stopped at its limit)" : "")
                << "; the largest:\n";
        for (const auto &d : answer["deleted_open"]) {
            out << "  " << bytes(d, "allocated_bytes") << "  " << name(d, "path") << " (deleted), held by";
            for (const auto &h : d.value("holders", json::array()))
                out << " " << name(h, "comm") << " (pid " << h.value("pid", 0) << ")";
            out << "\n";
        }
    }
    out << "\nFailing to write for want of space (ENOSPC/EDQUOT):\n";
    if (answer["failing_writers"].empty())
        out << "  none recorded\n";
    for (const auto &p : answer["failing_writers"])
        out << "  " << p.value("nospace_failures", 0) << " failed writes  " << process_line(p) << ", from "
            << since(p, "first_failure") << " to " << since(p, "last_failure") << "\n";
    if (answer.contains("prevention")) {
        out << "\nPrevention missing:\n";
        if (answer["prevention"].empty())
            out << "  nothing found missing\n";
        for (const auto &p : answer["prevention"])
            out << "  " << terminal_safe(p.value("finding", "")) << "\n";
    }
    if (!answer["events"].empty()) {
        out << "\nWhat the agent saw and did:\n";
        for (const auto &e : answer["events"])
            out << "  " << since(e, "ts") << "  " << event_line(e) << "\n";
    }
    if (answer.contains("advice")) {
        out << "\nWhat to do:\n";
        for (const auto &line : answer["advice"])
            out << "  - " << terminal_safe(line.get<std::string>()) << "\n";
    }
    return out.str();
}

}  // namespace diskwatch
