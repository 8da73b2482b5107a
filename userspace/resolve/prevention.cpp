#include "resolve/prevention.h"

#include <dirent.h>
#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <functional>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "resolve/kernel_files.h"
#include "resolve/numbers.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

namespace {

// A configuration file is some KiB; a bigger one is not read (a 10 MB file
// dropped in logrotate.d must not stall `explain`).
constexpr size_t kConfigMaxBytes = size_t{1} << 20;
// logrotate.d holds one file per package: hundreds at most.
constexpr size_t kMaxLogrotateFiles = 1024;
constexpr size_t kMaxIncludeDepth = 8;
// Entries looked at in one directory (logrotate.d, a drop-in directory, /usr/lib).
constexpr size_t kMaxDirectoryEntries = 4096;
constexpr size_t kMaxPatterns = 100000;
// A container id is 64 hex digits.
constexpr size_t kContainerIdMaxLength = 64;
constexpr size_t kHostconfigMaxBytes = size_t{4} << 20;
constexpr size_t kUnitNameMaxLength = 256;

// `path` (absolute, on the machine) under the root prefix.
std::string under_root(const std::string &root, const std::string &path)
{
    if (root.empty() || root == "/")
        return path;
    std::string joined = root;
    while (joined.size() > 1 && joined.back() == '/')
        joined.pop_back();
    return joined + path;
}

// Text a person wrote: no NUL, no control byte but tab, CR, LF and FF. Invalid
// UTF-8 is let through (a path may be in any encoding).
bool looks_like_text(std::string_view text)
{
    return std::none_of(text.begin(), text.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte < 0x20 && byte != '\t' && byte != '\n' && byte != '\r' && byte != '\f';
    });
}

// Regular files' and symlinks' names in `dir`, sorted; at most
// kMaxDirectoryEntries looked at. nullopt with errno when it cannot be opened.
std::optional<std::vector<std::string>> directory_names(const std::string &dir, int &error)
{
    DIR *handle = ::opendir(dir.c_str());
    if (handle == nullptr) {
        error = errno;
        return std::nullopt;
    }
    std::vector<std::string> names;
    size_t seen = 0;
    while (const dirent *entry = ::readdir(handle)) {
        if (++seen > kMaxDirectoryEntries)
            break;
        if (entry->d_name[0] == '.')
            continue;
        names.emplace_back(entry->d_name);
    }
    ::closedir(handle);
    std::sort(names.begin(), names.end());
    return names;
}

// --- logrotate -----------------------------------------------------------------

// logrotate's default "tabooext" list: files an include of a directory skips.
bool logrotate_skips(std::string_view name)
{
    static constexpr std::string_view kTaboo[] = {
        ",v", ".cfsaved", ".disabled", ".dpkg-bak", ".dpkg-del", ".dpkg-dist", ".dpkg-new", ".dpkg-old",
        ".dpkg-tmp", ".rpmnew", ".rpmorig", ".rpmsave", ".swp", ".ucf-dist", ".ucf-new", ".ucf-old", "~"};
    if (name.find(".rhn-cfg-tmp-") != std::string_view::npos)
        return true;
    return std::any_of(std::begin(kTaboo), std::end(kTaboo), [&](std::string_view ext) {
        return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
    });
}

// Splits one line into words; "..." and '...' keep blanks inside one word.
// A '{' or '}' is a word of its own even when written against a path.
std::vector<std::string> logrotate_words(std::string_view line)
{
    std::vector<std::string> words;
    size_t i = 0;
    while (i < line.size()) {
        const char c = line[i];
        if (std::isspace(static_cast<unsigned char>(c))) {
            ++i;
        } else if (c == '{' || c == '}') {
            words.emplace_back(1, c);
            ++i;
        } else if (c == '"' || c == '\'') {
            const size_t close = line.find(c, i + 1);
            const size_t end = close == std::string_view::npos ? line.size() : close;
            words.emplace_back(line.substr(i + 1, end - i - 1));
            i = end + 1;
        } else {
            size_t end = i;
            while (end < line.size() && !std::isspace(static_cast<unsigned char>(line[end])) && line[end] != '{' &&
                   line[end] != '}')
                ++end;
            words.emplace_back(line.substr(i, end - i));
            i = end;
        }
    }
    return words;
}

class LogrotateReader {
public:
    LogrotateReader(const std::string &root, LogrotateConfig &config) : root_(root), config_(config) {}

    // A file or a directory named in the configuration (or the two defaults).
    void read_path(const std::string &path, size_t depth, bool missing_is_note)
    {
        if (depth > kMaxIncludeDepth) {
            config_.notes.push_back(path + ": includes nested deeper than " + std::to_string(kMaxIncludeDepth) +
                                    ", not read");
            return;
        }
        const std::string local = under_root(root_, path);
        struct stat st {};
        if (::stat(local.c_str(), &st) != 0) {
            if (errno != ENOENT || missing_is_note)
                config_.notes.push_back(path + ": " + errno_text(errno));
            return;
        }
        if (S_ISDIR(st.st_mode)) {
            if (!visited_.insert({st.st_dev, st.st_ino}).second)
                return;  // already read (logrotate.d, included and read by default)
            int error = 0;
            const auto names = directory_names(local, error);
            if (!names) {
                config_.notes.push_back(path + ": " + errno_text(error));
                return;
            }
            for (const auto &name : *names)
                if (!logrotate_skips(name))
                    read_path(path + (path.ends_with('/') ? "" : "/") + name, depth + 1, true);
            return;
        }
        if (!visited_.insert({st.st_dev, st.st_ino}).second) {
            if (depth > 0 && in_progress_.contains({st.st_dev, st.st_ino}))
                config_.notes.push_back(path + ": includes itself (a loop), read once");
            return;
        }
        if (config_.files_read.size() >= kMaxLogrotateFiles) {
            config_.notes.push_back(path + ": more than " + std::to_string(kMaxLogrotateFiles) +
                                    " configuration files, not read");
            return;
        }
        const auto file = read_config_file(local, kConfigMaxBytes);
        if (!file.ok()) {
            config_.notes.push_back(path + ": " +
                                    (file.error == EFBIG ? "larger than " + std::to_string(kConfigMaxBytes >> 10) +
                                                               " KiB, not read"
                                                         : errno_text(file.error)));
            return;
        }
        if (!looks_like_text(file.text)) {
            config_.notes.push_back(path + ": not text (binary bytes), not read");
            return;
        }
        config_.files_read.push_back(path);
        in_progress_.insert({st.st_dev, st.st_ino});
        parse(path, file.text, depth);
        in_progress_.erase({st.st_dev, st.st_ino});
    }

private:
    void parse(const std::string &path, std::string_view text, size_t depth)
    {
        std::vector<LogrotatePattern> pending;  // paths seen, their '{' not yet
        bool in_block = false, in_script = false;
        size_t line_number = 0;
        while (!text.empty()) {
            const size_t newline = text.find('\n');
            const std::string_view raw = text.substr(0, newline);
            text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
            ++line_number;
            const std::string_view line = trim_blanks(raw);
            if (line.empty() || line.front() == '#')
                continue;
            const auto words = logrotate_words(line);
            if (words.empty())
                continue;
            if (in_script) {  // shell until "endscript": its braces are not blocks
                if (words.front() == "endscript")
                    in_script = false;
                continue;
            }
            if (in_block) {
                static constexpr std::string_view kScripts[] = {"postrotate", "prerotate", "firstaction",
                                                                "lastaction", "preremove"};
                if (std::find(std::begin(kScripts), std::end(kScripts), words.front()) != std::end(kScripts))
                    in_script = true;
                else if (std::find(words.begin(), words.end(), "}") != words.end())
                    in_block = false;
                continue;
            }
            // Top level: a directive starts with a letter; anything else starts a path list.
            if (pending.empty() && std::isalpha(static_cast<unsigned char>(line.front()))) {
                if (words.front() == "include") {
                    if (words.size() < 2 || words[1].empty() || words[1].front() != '/')
                        config_.notes.push_back(path + ":" + std::to_string(line_number) +
                                                ": include without an absolute path, ignored");
                    else
                        read_path(words[1], depth + 1, true);
                }
                continue;
            }
            for (size_t i = 0; i < words.size(); ++i) {
                if (words[i] == "{") {
                    if (pending.empty())
                        config_.notes.push_back(path + ":" + std::to_string(line_number) + ": a block names no file");
                    for (auto &pattern : pending)
                        if (config_.patterns.size() < kMaxPatterns)
                            config_.patterns.push_back(std::move(pattern));
                    pending.clear();
                    in_block = true;
                    // "{ ... }" on one line
                    if (std::find(words.begin() + static_cast<long>(i), words.end(), "}") != words.end())
                        in_block = false;
                    break;
                }
                if (words[i] == "}")
                    continue;
                pending.push_back({words[i], path, line_number});
            }
        }
        if (!pending.empty())
            config_.notes.push_back(path + ":" + std::to_string(pending.front().line) + ": \"" +
                                    pending.front().pattern + "\" has no '{' block, ignored (logrotate refuses it)");
        if (in_block)
            config_.notes.push_back(path + ": ends inside a block (a '}' is missing)");
    }

    const std::string &root_;
    LogrotateConfig &config_;
    std::set<std::pair<dev_t, ino_t>> visited_, in_progress_;
};

// --- systemd's configuration files ----------------------------------------------

// One key=value of a systemd-style file (systemd.syntax(7)), its section.
using AssignmentSink = std::function<void(std::string_view section, std::string_view key, std::string_view value)>;

void parse_systemd_ini(std::string_view text, const AssignmentSink &sink)
{
    std::string section, logical;
    while (!text.empty()) {
        const size_t newline = text.find('\n');
        std::string_view line = text.substr(0, newline);
        text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        // A trailing backslash continues the line (a comment line in between is skipped).
        if (!logical.empty()) {
            const std::string_view trimmed = trim_blanks(line);
            if (!trimmed.empty() && (trimmed.front() == '#' || trimmed.front() == ';'))
                continue;
        }
        if (!line.empty() && line.back() == '\\') {
            logical.append(line.substr(0, line.size() - 1)).push_back(' ');
            continue;
        }
        logical.append(line);
        const std::string whole = std::move(logical);
        logical.clear();
        const std::string_view content = trim_blanks(whole);
        if (content.empty() || content.front() == '#' || content.front() == ';')
            continue;
        if (content.front() == '[') {
            const size_t close = content.find(']');
            section = close == std::string_view::npos ? std::string() : std::string(content.substr(1, close - 1));
            continue;
        }
        const size_t equals = content.find('=');
        if (equals == std::string_view::npos)
            continue;
        sink(section, trim_blanks(content.substr(0, equals)), trim_blanks(content.substr(equals + 1)));
    }
}

// Reads one systemd configuration file: 0, or the errno (with a note unless
// ENOENT; EINVAL: not a regular file, as a unit masked by a link to /dev/null).
int read_systemd_file(const std::string &root, const std::string &path, std::vector<std::string> &notes,
                      const AssignmentSink &sink)
{
    const auto file = read_config_file(under_root(root, path), kConfigMaxBytes);
    if (!file.ok()) {
        if (file.error != ENOENT)
            notes.push_back(path + ": " +
                            (file.error == EFBIG ? "larger than " + std::to_string(kConfigMaxBytes >> 10) +
                                                       " KiB, not read"
                                                 : file.error == EINVAL ? std::string("not a regular file (masked?)")
                                                                        : errno_text(file.error)));
        return file.error;
    }
    if (!looks_like_text(file.text)) {
        notes.push_back(path + ": not text (binary bytes), not read");
        return EILSEQ;
    }
    parse_systemd_ini(file.text, sink);
    return 0;
}

// The drop-ins of `dir_names` (e.g. "journald.conf.d") found in `search`
// directories, first directory first: a name in an earlier directory hides
// the same name in later ones; the result is in name order, the order
// systemd applies them in whatever directory each is in.
std::vector<std::string> drop_ins(const std::string &root, const std::vector<std::string> &search,
                                  const std::vector<std::string> &dir_names, std::vector<std::string> &notes)
{
    std::map<std::string, std::string> by_name;
    for (const auto &dir : search)
        for (const auto &dir_name : dir_names) {
            const std::string path = dir + "/" + dir_name;
            int error = 0;
            const auto names = directory_names(under_root(root, path), error);
            if (!names) {
                if (error != ENOENT && error != ENOTDIR)
                    notes.push_back(path + ": " + errno_text(error));
                continue;
            }
            for (const auto &name : *names)
                if (name.ends_with(".conf"))
                    by_name.try_emplace(name, path + "/" + name);
        }
    std::vector<std::string> paths;
    paths.reserve(by_name.size());
    for (auto &[name, path] : by_name)
        paths.push_back(std::move(path));
    return paths;
}

std::optional<std::string> non_empty(std::string_view value)
{
    return value.empty() ? std::nullopt : std::optional<std::string>(value);
}

bool is_directory(const std::string &path)
{
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// "log-opts" / "Config" values: strings in Docker's files.
std::optional<std::string> string_option(const nlohmann::json &options, const char *key)
{
    if (!options.is_object())
        return std::nullopt;
    const auto it = options.find(key);
    if (it == options.end() || !it->is_string())
        return std::nullopt;
    return it->get<std::string>();
}

}  // namespace

LogrotateConfig read_logrotate_config(const std::string &root)
{
    LogrotateConfig config;
    LogrotateReader reader(root, config);
    reader.read_path("/etc/logrotate.conf", 0, true);
    // Also when logrotate.conf does not include it (every distribution's does):
    // read once either way.
    reader.read_path("/etc/logrotate.d", 0, false);
    return config;
}

std::optional<LogrotatePattern> logrotate_match(const LogrotateConfig &config, const std::string &path)
{
    for (const auto &pattern : config.patterns)
        if (::fnmatch(pattern.pattern.c_str(), path.c_str(), FNM_PATHNAME) == 0)
            return pattern;
    return std::nullopt;
}

LogrotateCoverage logrotate_covers(const std::string &path, const std::string &root)
{
    LogrotateConfig config = read_logrotate_config(root);
    LogrotateCoverage coverage;
    coverage.match = logrotate_match(config, path);
    coverage.covered = coverage.match.has_value();
    coverage.notes = std::move(config.notes);
    return coverage;
}

DockerDaemonLogging read_docker_daemon_logging(const std::string &root)
{
    DockerDaemonLogging logging;
    const std::string path = "/etc/docker/daemon.json";
    const auto file = read_config_file(under_root(root, path), kConfigMaxBytes);
    if (!file.ok()) {
        if (file.error != ENOENT)  // absent: Docker's defaults, no note needed
            logging.notes.push_back(path + ": " + errno_text(file.error));
        return logging;
    }
    // Strict JSON, as dockerd reads it: a comment makes dockerd refuse to start too.
    const auto json = nlohmann::json::parse(file.text, nullptr, false);
    if (json.is_discarded() || !json.is_object()) {
        logging.notes.push_back(path + ": not a JSON object, not understood");
        return logging;
    }
    logging.config_found = true;
    if (const auto driver = string_option(json, "log-driver"))
        logging.log_driver = *driver;
    else if (json.contains("log-driver"))
        logging.notes.push_back(path + ": \"log-driver\" is not a string, ignored");
    if (const auto it = json.find("log-opts"); it != json.end()) {
        if (!it->is_object())
            logging.notes.push_back(path + ": \"log-opts\" is not an object, ignored");
        logging.max_size = string_option(*it, "max-size");
        logging.max_file = string_option(*it, "max-file");
    }
    return logging;
}

ContainerLogging read_container_logging(const std::string &container_id, const std::string &docker_root)
{
    ContainerLogging logging;
    if (container_id.empty() || container_id.size() > kContainerIdMaxLength ||
        !std::all_of(container_id.begin(), container_id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); })) {
        logging.notes.push_back("not a Docker container id (64 hex digits), not looked up");
        return logging;
    }
    const std::string path = docker_root + "/containers/" + container_id + "/hostconfig.json";
    const auto file = read_state_file(path, kHostconfigMaxBytes);
    if (!file.ok()) {
        logging.notes.push_back(path + ": " + errno_text(file.error));
        return logging;
    }
    const auto json = nlohmann::json::parse(file.text, nullptr, false);
    const auto config = json.is_object() ? json.find("LogConfig") : json.end();
    if (json.is_discarded() || !json.is_object() || config == json.end() || !config->is_object()) {
        logging.notes.push_back(path + ": no LogConfig object");
        return logging;
    }
    logging.found = true;
    logging.log_driver = string_option(*config, "Type").value_or("");
    if (const auto options = config->find("Config"); options != config->end()) {
        logging.max_size = string_option(*options, "max-size");
        logging.max_file = string_option(*options, "max-file");
    }
    return logging;
}

JournaldConfig read_journald_config(const std::string &root)
{
    JournaldConfig config;
    const auto apply = [&config](std::string_view section, std::string_view key, std::string_view value) {
        if (section != "Journal")
            return;
        if (key == "Storage")
            config.storage = non_empty(value);
        else if (key == "SystemMaxUse")
            config.system_max_use = non_empty(value);
        else if (key == "SystemKeepFree")
            config.system_keep_free = non_empty(value);
        else if (key == "RuntimeMaxUse")
            config.runtime_max_use = non_empty(value);
    };
    // journald.conf(5): the main file is the first found of these (older
    // systemd reads /etc's only); the drop-ins of every directory apply after
    // it, in name order.
    const std::vector<std::string> search = {"/etc/systemd", "/run/systemd", "/usr/local/lib/systemd",
                                             "/usr/lib/systemd"};
    for (const auto &dir : search)
        if (const int error = read_systemd_file(root, dir + "/journald.conf", config.notes, apply); error != ENOENT) {
            if (error == 0)
                config.files_read.push_back(dir + "/journald.conf");
            break;  // the first present is the main file, read or not
        }
    for (const auto &path : drop_ins(root, search, {"journald.conf.d"}, config.notes))
        if (read_systemd_file(root, path, config.notes, apply) == 0)
            config.files_read.push_back(path);
    const std::string storage = config.storage.value_or("auto");
    config.persistent =
        storage == "persistent" || (storage == "auto" && is_directory(under_root(root, "/var/log/journal")));
    return config;
}

UnitLogsDirectory read_unit_logs_directory(const std::string &unit, const std::string &root)
{
    UnitLogsDirectory result;
    if (unit.empty() || unit.size() > kUnitNameMaxLength || unit.find('/') != std::string::npos ||
        unit.front() == '.' || unit.find('.') == std::string::npos) {
        result.notes.push_back("not a unit name, not looked up");
        return result;
    }
    // "a@b.service" -> its template "a@.service"
    std::vector<std::string> names = {unit};
    if (const size_t at = unit.find('@'), dot = unit.rfind('.');
        at != std::string::npos && dot != std::string::npos && dot > at + 1)
        names.push_back(unit.substr(0, at + 1) + unit.substr(dot));
    const std::vector<std::string> search = {"/etc/systemd/system", "/run/systemd/system",
                                             "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
                                             "/lib/systemd/system"};
    const auto apply = [&result](std::string_view section, std::string_view key, std::string_view value) {
        if (section != "Service")
            return;
        if (key == "LogsDirectory") {
            if (value.empty())
                result.logs_directory.clear();  // an empty assignment resets the list
            while (!(value = trim_blanks(value)).empty()) {
                const auto end = std::find_if(value.begin(), value.end(),
                                              [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
                result.logs_directory.emplace_back(value.begin(), end);
                value.remove_prefix(static_cast<size_t>(end - value.begin()));
            }
        } else if (key == "LogsDirectoryQuota") {
            result.logs_directory_quota = non_empty(value);
        } else if (key == "LogsDirectoryAccounting") {
            result.logs_directory_accounting = non_empty(value);
        }
    };
    bool stop = false;
    for (const auto &name : names) {
        for (const auto &dir : search) {
            const int error = read_systemd_file(root, dir + "/" + name, result.notes, apply);
            if (error == ENOENT)
                continue;
            // The first present is the fragment: one that cannot be read (masked:
            // a link to /dev/null) hides those of later directories.
            result.unit_found = error == 0;
            result.fragment = dir + "/" + name;
            stop = true;
            break;
        }
        if (stop)
            break;
    }
    if (!result.unit_found)
        return result;
    std::vector<std::string> dir_names;
    for (auto it = names.rbegin(); it != names.rend(); ++it)
        dir_names.push_back(*it + ".d");
    for (const auto &path : drop_ins(root, search, dir_names, result.notes))
        if (read_systemd_file(root, path, result.notes, apply) == 0)
            result.drop_ins.push_back(path);
    return result;
}

std::optional<unsigned> installed_systemd_version(const std::string &root)
{
    std::vector<std::string> dirs = {"/usr/lib/systemd", "/lib/systemd", "/usr/lib64/systemd"};
    int error = 0;
    // Debian and Ubuntu: /usr/lib/x86_64-linux-gnu/systemd
    if (const auto names = directory_names(under_root(root, "/usr/lib"), error))
        for (const auto &name : *names)
            if (name.find("-linux-") != std::string::npos)
                dirs.push_back("/usr/lib/" + name + "/systemd");
    constexpr std::string_view kPrefix = "libsystemd-shared-";
    std::optional<unsigned> version;
    for (const auto &dir : dirs) {
        const auto names = directory_names(under_root(root, dir), error);
        if (!names)
            continue;
        for (const auto &name : *names) {
            if (!name.starts_with(kPrefix))
                continue;
            unsigned number = 0;
            size_t digits = 0;
            for (size_t i = kPrefix.size(); i < name.size() && digits < 6 && std::isdigit(static_cast<unsigned char>(name[i])); ++i, ++digits)
                number = number * 10 + static_cast<unsigned>(name[i] - '0');
            if (digits > 0 && (!version || number > *version))
                version = number;
        }
    }
    return version;
}

}  // namespace diskwatch
