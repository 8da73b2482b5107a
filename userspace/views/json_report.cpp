#include "views/json_report.h"

#include <charconv>

#include "aggregate/container_groups.h"
#include "resolve/mountinfo.h"
#include "views/format.h"

namespace diskwatch {

namespace {

nlohmann::json optional_number(const std::optional<double> &value)
{
    return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

// "major:minor" back to the kernel's dev_t encoding.
std::optional<DeviceNumber> parse_device_number(const std::string &text)
{
    const size_t colon = text.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
        return std::nullopt;
    unsigned major = 0;
    unsigned minor = 0;
    const auto parsed_major = std::from_chars(text.data(), text.data() + colon, major);
    const auto parsed_minor = std::from_chars(text.data() + colon + 1, text.data() + text.size(), minor);
    if (parsed_major.ec != std::errc() || parsed_major.ptr != text.data() + colon || parsed_minor.ec != std::errc() ||
        parsed_minor.ptr != text.data() + text.size())
        return std::nullopt;
    return DeviceNumber {major, minor};
}

int base64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

std::string unbase64(std::string_view text)
{
    std::string out;
    unsigned accumulator = 0;
    int bits = 0;
    for (char c : text) {
        const int value = base64_value(c);
        if (value < 0)
            continue;  // padding
        accumulator = (accumulator << 6) | static_cast<unsigned>(value);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((accumulator >> bits) & 0xff);
        }
    }
    return out;
}

template <typename T>
T number_or(const nlohmann::json &object, const char *key, T fallback)
{
    auto it = object.find(key);
    return it != object.end() && it->is_number() ? it->get<T>() : fallback;
}

std::string text_or_empty(const nlohmann::json &object, const char *key)
{
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<double> optional_double(const nlohmann::json &object, const char *key)
{
    auto it = object.find(key);
    return it != object.end() && it->is_number() ? std::optional<double>(it->get<double>()) : std::nullopt;
}

}  // namespace

std::string get_name(const nlohmann::json &object, const std::string &key)
{
    if (auto exact = object.find(key + "_b64"); exact != object.end() && exact->is_string())
        return unbase64(exact->get<std::string>());
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

namespace {

// A member of `object` by reference, or an empty one of `type` when it is
// missing or of another type: json::value() would copy a whole array (a
// report's rows) to read it once.
const nlohmann::json &member_or_empty(const nlohmann::json &object, const char *key,
                                      nlohmann::json::value_t type = nlohmann::json::value_t::array)
{
    static const nlohmann::json empty_array = nlohmann::json::array(), empty_object = nlohmann::json::object();
    if (object.is_object())
        if (auto it = object.find(key); it != object.end() && it->type() == type)
            return *it;
    return type == nlohmann::json::value_t::array ? empty_array : empty_object;
}

}  // namespace

WriteReport report_from_json(const nlohmann::json &document)
{
    WriteReport report;
    if (!document.is_object())
        return report;
    report.interval_s = number_or(document, "interval_s", 0.0);
    const std::string by = text_or_empty(document, "by");
    report.by = parse_group_by(by).value_or(GroupBy::process);
    if (parse_container_grouping(by)) {
        report.by = GroupBy::cgroup;  // what the rows were merged from
        report.grouping = by;
    }
    const std::string source = text_or_empty(document, "source");
    report.source = source == "agent" ? ReportSource::agent : source == "replay" ? ReportSource::replay : ReportSource::local;
    for (const auto &object : member_or_empty(document, "rows")) {
        ReportRow row;
        row.pid = number_or<uint32_t>(object, "pid", 0);
        row.comm = get_name(object, "comm");
        row.exe = get_name(object, "exe");
        row.uid = number_or<uint32_t>(object, "uid", 0);
        row.exited = object.value("exited", false);
        row.processes = number_or<size_t>(object, "processes", 0);
        row.cgroup_id = number_or<uint64_t>(object, "cgroup_id", 0);
        row.cgroup = get_name(object, "cgroup");
        row.mount = get_name(object, "mount");
        row.dev = text_or_empty(object, "dev");
        if (auto dev = parse_device_number(row.dev))
            row.kernel_dev = dev->to_kernel();
        row.fstype = text_or_empty(object, "fstype");
        row.write_bytes = number_or<uint64_t>(object, "write_bytes", 0);
        row.write_bps = number_or(object, "write_bps", 0.0);
        row.write_calls = number_or<uint64_t>(object, "write_calls", 0);
        row.total_write_calls = number_or<uint64_t>(object, "total_write_calls", 0);
        row.total_bytes = number_or<uint64_t>(object, "total_bytes", 0);
        row.growth_bytes = number_or<uint64_t>(object, "growth_bytes", 0);
        row.growth_bps = number_or(object, "growth_bps", 0.0);
        row.total_growth_bytes = number_or<uint64_t>(object, "total_growth_bytes", 0);
        // 0 from a report of a version before them (they were added, not changed).
        row.nospace_failures = number_or<uint64_t>(object, "nospace_failures", 0);
        row.total_nospace_failures = number_or<uint64_t>(object, "total_nospace_failures", 0);
        row.unit = text_or_empty(object, "unit");
        if (auto container = object.find("container"); container != object.end() && container->is_object()) {
            row.container = text_or_empty(*container, "id");
            row.container_name = get_name(*container, "name");
            row.container_runtime = text_or_empty(*container, "runtime");
            row.container_image = get_name(*container, "image");
            row.container_image_id = text_or_empty(*container, "image_id");
            row.compose_project = get_name(*container, "compose_project");
            row.compose_service = get_name(*container, "compose_service");
        }
        row.containers = number_or<size_t>(object, "containers", 0);
        for (const auto &file : member_or_empty(object, "files")) {
            WrittenFile written;
            written.path = get_name(file, "path");
            written.ino = number_or<uint64_t>(file, "ino", 0);
            written.deleted = file.value("deleted", false);
            written.size_bytes = number_or<uint64_t>(file, "size_bytes", 0);
            row.files.push_back(std::move(written));
        }
        row.agent_action = text_or_empty(object, "agent_action");
        report.rows.push_back(std::move(row));
    }
    for (const auto &object : member_or_empty(document, "mounts")) {
        MountReport mount;
        mount.mount = get_name(object, "mount");
        mount.dev = text_or_empty(object, "dev");
        mount.fstype = text_or_empty(object, "fstype");
        mount.source = get_name(object, "source");
        mount.size_bytes = number_or<uint64_t>(object, "size_bytes", 0);
        mount.used_bytes = number_or<uint64_t>(object, "used_bytes", 0);
        mount.available_bytes = number_or<uint64_t>(object, "available_bytes", 0);
        mount.used_pct = number_or(object, "used_pct", 0.0);
        mount.write_bytes = number_or<uint64_t>(object, "write_bytes", 0);
        mount.write_bps = number_or(object, "write_bps", 0.0);
        mount.total_bytes = number_or<uint64_t>(object, "total_bytes", 0);
        mount.growth_bytes = number_or<uint64_t>(object, "growth_bytes", 0);
        mount.growth_bps = number_or(object, "growth_bps", 0.0);
        mount.nospace_failures = number_or<uint64_t>(object, "nospace_failures", 0);
        mount.total_nospace_failures = number_or<uint64_t>(object, "total_nospace_failures", 0);
        mount.fill_bps = optional_double(object, "fill_bps");
        mount.eta_full_s = optional_double(object, "eta_full_s");
        report.mounts.push_back(std::move(mount));
    }
    const auto &drops = member_or_empty(document, "drops", nlohmann::json::value_t::object);
    for (const auto &reason : kDropReasons)
        report.drops.*reason.counter = number_or<uint64_t>(drops, std::string(reason.name).c_str(), 0);
    return report;
}


nlohmann::json drops_json(const DropCounters &drops)
{
    nlohmann::json json = nlohmann::json::object();
    for (const auto &reason : kDropReasons)
        json[std::string(reason.name)] = drops.*reason.counter;
    return json;
}

nlohmann::json to_json(const WriteReport &report)
{
    nlohmann::json rows = nlohmann::json::array();
    for (const auto &row : report.rows) {
        nlohmann::json files = nlohmann::json::array();
        for (const auto &file : row.files) {
            nlohmann::json entry = {{"ino", file.ino},
                                    {"deleted", file.deleted},
                                    {"size_bytes", file.path.empty() ? nlohmann::json(nullptr)
                                                                     : nlohmann::json(file.size_bytes)}};
            if (file.path.empty())
                entry["path"] = nullptr;
            else
                put_name(entry, "path", file.path);  // a file name is anyone's choice too
            files.push_back(std::move(entry));
        }
        auto text_or_null = [](const std::string &text) {
            return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text);
        };
        nlohmann::json container = nullptr;
        if (!row.container.empty()) {
            container = {{"id", row.container},
                         {"runtime", text_or_null(row.container_runtime)},
                         {"image_id", text_or_null(row.container_image_id)}};
            // Names the container's owner chose: null when unknown, else
            // put_name (exact bytes in <key>_b64 when not UTF-8).
            for (const auto &[key, value] : {std::pair<const char *, const std::string &>{"name", row.container_name},
                                             {"image", row.container_image},
                                             {"compose_project", row.compose_project},
                                             {"compose_service", row.compose_service}}) {
                if (value.empty())
                    container[key] = nullptr;
                else
                    put_name(container, key, value);
            }
        }
        nlohmann::json object = {
            {"pid", row.pid},
            {"uid", row.uid},
            {"exited", row.exited},
            {"processes", row.processes},
            {"cgroup_id", row.cgroup_id},
            {"dev", row.dev},
            {"fstype", row.fstype},
            {"write_bytes", row.write_bytes},
            {"write_bps", row.write_bps},
            {"write_calls", row.write_calls},
            {"total_write_calls", row.total_write_calls},
            {"total_bytes", row.total_bytes},
            {"growth_bytes", row.growth_bytes},
            {"growth_bps", row.growth_bps},
            {"total_growth_bytes", row.total_growth_bytes},
            {"nospace_failures", row.nospace_failures},
            {"total_nospace_failures", row.total_nospace_failures},
            {"unit", text_or_null(row.unit)},
            {"container", std::move(container)},
            {"files", std::move(files)},
            {"agent_action", text_or_null(row.agent_action)},
        };
        put_name(object, "comm", row.comm);
        put_name(object, "exe", row.exe);
        put_name(object, "cgroup", row.cgroup);
        put_name(object, "mount", row.mount);
        if (!report.grouping.empty())
            object["containers"] = row.containers;  // top --by container|service: containers merged
        rows.push_back(std::move(object));
    }
    nlohmann::json mounts = nlohmann::json::array();
    for (const auto &mount : report.mounts) {
        nlohmann::json object = {
            {"dev", mount.dev},
            {"fstype", mount.fstype},
            {"size_bytes", mount.size_bytes},
            {"used_bytes", mount.used_bytes},
            {"available_bytes", mount.available_bytes},
            {"used_pct", mount.used_pct},
            {"write_bytes", mount.write_bytes},
            {"write_bps", mount.write_bps},
            {"total_bytes", mount.total_bytes},
            {"growth_bytes", mount.growth_bytes},
            {"growth_bps", mount.growth_bps},
            {"nospace_failures", mount.nospace_failures},
            {"total_nospace_failures", mount.total_nospace_failures},
            {"fill_bps", optional_number(mount.fill_bps)},
            {"eta_full_s", optional_number(mount.eta_full_s)},
        };
        put_name(object, "mount", mount.mount);
        put_name(object, "source", mount.source);
        mounts.push_back(std::move(object));
    }
    return {
        {"ts", rfc3339_utc(report.ts)},
        {"interval_s", report.interval_s},
        {"by", report.grouping.empty() ? std::string(to_string(report.by)) : report.grouping},
        {"source", std::string(to_string(report.source))},
        {"rows", std::move(rows)},
        {"mounts", std::move(mounts)},
        {"drops", drops_json(report.drops)},
    };
}

std::string to_json_line(const WriteReport &report)
{
    // ensure_ascii: every byte of the line is printable ASCII (non-ASCII as
    // \uXXXX), so a log reader's terminal (tail -f, less -R) can never be
    // driven by a name, not even by C1 controls such as U+009B.
    return to_json(report).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

}  // namespace diskwatch
