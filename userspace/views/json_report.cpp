#include "views/json_report.h"

#include "views/format.h"

namespace diskwatch {

namespace {

nlohmann::json optional_number(const std::optional<double> &value)
{
    return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

}  // namespace

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
        if (!row.container.empty())
            container = {{"id", row.container},
                         {"name", text_or_null(row.container_name)},
                         {"runtime", text_or_null(row.container_runtime)}};
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
            {"total_bytes", row.total_bytes},
            {"growth_bytes", row.growth_bytes},
            {"growth_bps", row.growth_bps},
            {"total_growth_bytes", row.total_growth_bytes},
            {"unit", text_or_null(row.unit)},
            {"container", std::move(container)},
            {"files", std::move(files)},
        };
        put_name(object, "comm", row.comm);
        put_name(object, "exe", row.exe);
        put_name(object, "cgroup", row.cgroup);
        put_name(object, "mount", row.mount);
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
            {"fill_bps", optional_number(mount.fill_bps)},
            {"eta_full_s", optional_number(mount.eta_full_s)},
        };
        put_name(object, "mount", mount.mount);
        mounts.push_back(std::move(object));
    }
    return {
        {"ts", rfc3339_utc(report.ts)},
        {"interval_s", report.interval_s},
        {"by", std::string(to_string(report.by))},
        {"rows", std::move(rows)},
        {"mounts", std::move(mounts)},
        {"drops",
         {
             {"writers_map_full", report.drops.writers_map_full},
             {"ringbuf_full", report.drops.ringbuf_full},
             {"file_lookup", report.drops.file_lookup},
             {"pairing_map_full", report.drops.pairing_map_full},
             {"aio_events_skipped", report.drops.aio_events_skipped},
             {"aio_event_read", report.drops.aio_event_read},
             {"rate_bucket_full", report.drops.rate_bucket_full},
         }},
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
