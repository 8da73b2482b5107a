// What would have kept a disk from filling, read from the machine's
// configuration: log rotation (logrotate), Docker's json-file log cap,
// journald's size cap, systemd's per-unit logs quota. Plain facts and notes
// for what could not be read; `explain` phrases the advice. Every reader
// takes a root prefix ("/": this machine; a directory: a copy of one, as the
// tests use), is bounded in files and bytes read, and never throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace diskwatch {

// --- logrotate ---------------------------------------------------------------

// One path or glob a logrotate block rotates, and where it was written.
struct LogrotatePattern {
    std::string pattern;  // as written, quotes removed ("/var/log/nginx/*.log")
    std::string file;     // the configuration file, as on the machine (root prefix not shown)
    size_t line = 0;      // 1-based
};

struct LogrotateConfig {
    std::vector<LogrotatePattern> patterns;  // in reading order
    std::vector<std::string> files_read;     // as on the machine
    std::vector<std::string> notes;          // unreadable, binary, too large, include loop, ...
};

// /etc/logrotate.conf, the files it includes (a directory: its files in name
// order, skipping the editors' and package managers' leftovers as logrotate
// does), and every file of /etc/logrotate.d even when not included.
LogrotateConfig read_logrotate_config(const std::string &root = "/");

// The first pattern that matches `path` (absolute, on the machine) as
// logrotate's glob(3) would expand it: fnmatch with FNM_PATHNAME, so '*'
// never crosses a '/'. nullopt: no block rotates it.
std::optional<LogrotatePattern> logrotate_match(const LogrotateConfig &config, const std::string &path);

struct LogrotateCoverage {
    bool covered = false;
    std::optional<LogrotatePattern> match;  // which file/line's pattern
    std::vector<std::string> notes;
};
LogrotateCoverage logrotate_covers(const std::string &path, const std::string &root = "/");

// --- Docker ------------------------------------------------------------------

// The daemon's default for new containers, /etc/docker/daemon.json.
struct DockerDaemonLogging {
    bool config_found = false;              // daemon.json exists and is a JSON object
    std::string log_driver = "json-file";   // "log-driver"; Docker's default when absent
    std::optional<std::string> max_size;    // "log-opts"."max-size" ("10m"); nullopt: unbounded for json-file
    std::optional<std::string> max_file;    // "log-opts"."max-file"
    std::vector<std::string> notes;
};
DockerDaemonLogging read_docker_daemon_logging(const std::string &root = "/");

// One container's, <docker_root>/containers/<id>/hostconfig.json "LogConfig":
// dockerd merges the daemon's log-opts into it when the container is created,
// so this is what the container runs with (a later daemon.json change does not
// reach it).
struct ContainerLogging {
    bool found = false;                   // hostconfig.json read and has a LogConfig
    std::string log_driver;               // LogConfig.Type ("json-file", "local", "journald", ...)
    std::optional<std::string> max_size;  // LogConfig.Config."max-size"
    std::optional<std::string> max_file;  // LogConfig.Config."max-file"
    std::vector<std::string> notes;
};
// container_id: the full hex id (anything else is refused with a note: it
// becomes a path). docker_root as resolve/containers.h's ContainerRoots::docker.
ContainerLogging read_container_logging(const std::string &container_id,
                                        const std::string &docker_root = "/var/lib/docker");

// --- journald ----------------------------------------------------------------

// journald.conf(5): "SystemMaxUse= and RuntimeMaxUse= [...] The first pair
// defaults to 10% and the second to 15% of the size of the respective file
// system, but each value is capped to 4G." (systemd's man page, as Ubuntu's
// and Debian's manpages and man7.org carry it). The first pair is
// SystemMaxUse=/RuntimeMaxUse=.
inline constexpr unsigned kJournaldDefaultMaxUsePercent = 10;
inline constexpr uint64_t kJournaldDefaultMaxUseCapBytes = uint64_t{4} << 30;

// The [Journal] keys that bound its disk use, after the main file and the
// drop-ins (each later assignment overrides; an empty one restores the
// default). A value is as written ("2G", "10%"); nullopt: not set.
struct JournaldConfig {
    std::optional<std::string> storage;            // Storage=
    std::optional<std::string> system_max_use;     // SystemMaxUse=
    std::optional<std::string> system_keep_free;   // SystemKeepFree=
    std::optional<std::string> runtime_max_use;    // RuntimeMaxUse=
    // The journal is on disk (/var/log/journal): Storage=persistent, or auto
    // (the default) with /var/log/journal present. Otherwise it is in /run.
    bool persistent = false;
    std::vector<std::string> files_read;  // in the order applied, as on the machine
    std::vector<std::string> notes;
};
JournaldConfig read_journald_config(const std::string &root = "/");

// --- systemd units -----------------------------------------------------------

// LogsDirectoryQuota= (with LogsDirectoryAccounting=, and State/Cache
// siblings) is new in systemd 258 ("CHANGES WITH 258" in systemd's NEWS):
// a project quota on the unit's LogsDirectory=, on ext4 and XFS, not btrfs.
inline constexpr unsigned kLogsDirectoryQuotaSinceSystemd = 258;

struct UnitLogsDirectory {
    bool unit_found = false;  // its fragment was found and read
    // Its path, as on the machine; also set when it could not be read (a
    // unit masked by a link to /dev/null: unit_found false, and a note).
    std::string fragment;
    std::vector<std::string> drop_ins;  // applied, in order
    std::vector<std::string> logs_directory;             // LogsDirectory= (a list, accumulated)
    std::optional<std::string> logs_directory_quota;     // LogsDirectoryQuota=
    std::optional<std::string> logs_directory_accounting;  // LogsDirectoryAccounting=
    std::vector<std::string> notes;
};
// The unit's fragment (the first found of /etc, /run, /usr/local/lib,
// /usr/lib, /lib systemd/system; an instance "a@b.service" falls back to its
// template "a@.service") and its <unit>.d/*.conf drop-ins (a name in an
// earlier directory hides the same name in a later one; applied in name
// order), [Service] section.
UnitLogsDirectory read_unit_logs_directory(const std::string &unit, const std::string &root = "/");

// The installed systemd's version, from libsystemd-shared-NNN.so's name in
// its private library directory (/usr/lib/systemd, /lib/systemd,
// /usr/lib64/systemd, /usr/lib/<triplet>/systemd): the distributions' builds
// link their tools to it since 231 ("libsystemd-shared-252.so", Fedora's
// "libsystemd-shared-256.11-1.fc41.so"), and a file name needs neither D-Bus
// nor running systemctl. nullopt: not found (not systemd, a static build, or
// a layout not known).
std::optional<unsigned> installed_systemd_version(const std::string &root = "/");

}  // namespace diskwatch
