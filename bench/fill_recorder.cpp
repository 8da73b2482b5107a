// scripts/bench's `explain` phase: a flight record filled to its cap with
// windows as busy as an incident's (every grouping at its row limit, each
// process row naming files), written through the recorder's own encoding,
// so that `explain` and `top --replay` are timed on the worst store they meet.
//
//   dw-bench-fill-recorder DIR [MAX_MIB] [ROWS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "recorder/flight_recorder.h"
#include "recorder/record_store.h"

using namespace diskwatch;

namespace {

ReportRow row_of(int i, double interval_s, GroupBy by)
{
    ReportRow row;
    row.pid = static_cast<uint32_t>(1000 + i);
    row.comm = i == 0 ? "Suricata-Main" : "writer-" + std::to_string(i);
    row.exe = "/usr/bin/" + row.comm;
    row.cgroup_id = static_cast<uint64_t>(5000 + i);
    row.cgroup = i % 3 == 0 ? "/system.slice/suricata.service"
                            : "/system.slice/docker-" + std::string(64, static_cast<char>('a' + i % 6)) + ".scope";
    row.unit = i % 3 == 0 ? "suricata.service" : "docker-" + std::string(64, static_cast<char>('a' + i % 6)) + ".scope";
    if (i % 3 != 0) {
        row.container = std::string(64, static_cast<char>('a' + i % 6));
        row.container_name = "warehouse-minio-" + std::to_string(i);
        row.container_runtime = "docker";
        row.container_image = "minio/minio:RELEASE.2024-06-13T22-53-53Z";
        row.compose_project = "warehouse";
        row.compose_service = "minio";
    }
    row.mount = "/";
    row.dev = "254:0";
    row.kernel_dev = (254u << 20) | 0u;
    row.fstype = "ext4";
    row.write_bytes = 1000000ull * static_cast<uint64_t>(50 - i);
    row.growth_bytes = row.write_bytes / 2;
    row.write_calls = row.write_bytes / 4096;
    row.write_bps = static_cast<double>(row.write_bytes) / interval_s;
    row.growth_bps = row.write_bps / 2;
    row.total_bytes = row.write_bytes * 1000;
    row.total_growth_bytes = row.growth_bytes * 1000;
    row.processes = 1;
    if (by == GroupBy::process)
        for (int f = 0; f < 4; ++f)
            row.files.push_back({"/var/log/suricata/eve-" + std::to_string(i) + "-" + std::to_string(f) + ".json",
                                 static_cast<uint64_t>(100000 + i * 10 + f), false, 1000000000ull + static_cast<uint64_t>(f)});
    return row;
}

WriteReport report_of(GroupBy by, double ts, double interval_s, int rows)
{
    WriteReport report;
    report.ts = ts;
    report.interval_s = interval_s;
    report.by = by;
    for (int i = 0; i < rows; ++i)
        report.rows.push_back(row_of(i, interval_s, by));
    MountReport mount;
    mount.mount = "/";
    mount.dev = "254:0";
    mount.fstype = "ext4";
    mount.source = "/dev/vda1";
    mount.size_bytes = 500ull << 30;
    mount.used_bytes = 400ull << 30;
    mount.available_bytes = 100ull << 30;
    mount.used_pct = 80;
    mount.write_bytes = 1ull << 30;
    mount.fill_bps = 20e6;
    mount.eta_full_s = 5000;
    report.mounts.push_back(mount);
    return report;
}

}  // namespace

int main(int argc, char **argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: dw-bench-fill-recorder DIR [MAX_MIB] [ROWS]\n");
        return 2;
    }
    StoreLayout layout;
    layout.max_bytes = (argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 64) << 20;
    const int rows = argc > 3 ? std::atoi(argv[3]) : 25;
    std::string error;
    auto writer = RecordWriter::open(argv[1], layout, &error);
    if (!writer) {
        std::fprintf(stderr, "%s\n", error.c_str());
        return 1;
    }
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    // Enough windows to wrap both tiers: written oldest first, ending now.
    const double fine_s = 10, coarse_s = 300;
    size_t fine_records = 0, coarse_records = 0;
    uint64_t raw_bytes = 0;
    auto write = [&](RecordTier tier, double ts, double interval) {
        const auto body = window_record(ts - interval, interval, report_of(GroupBy::process, ts, interval, rows),
                                        report_of(GroupBy::cgroup, ts, interval, rows),
                                        report_of(GroupBy::mount, ts, interval, 1), nlohmann::json::array());
        const auto cbor = nlohmann::json::to_cbor(body);
        raw_bytes += cbor.size();
        if (!writer->append(tier, RecordKind::interval, static_cast<int64_t>(ts * 1000),
                            std::string_view(reinterpret_cast<const char *>(cbor.data()), cbor.size()), &error)) {
            std::fprintf(stderr, "%s\n", error.c_str());
            std::exit(1);
        }
    };
    // The fine tier's share is 3/4 of the cap; a record's compressed size is
    // learned from the first one, and 10% more are written than fit.
    write(RecordTier::fine, now - 1e6, fine_s);
    const size_t per_record = std::max<size_t>(1, raw_bytes / 8);  // deflate does about 8x on these
    const size_t fine_windows = static_cast<size_t>(static_cast<double>(layout.max_bytes) * 0.75 / per_record * 1.1);
    const size_t coarse_windows = static_cast<size_t>(static_cast<double>(layout.max_bytes) * 0.25 / per_record * 1.1);
    for (size_t i = coarse_windows; i > 0; --i, ++coarse_records)
        write(RecordTier::coarse, now - static_cast<double>(i) * coarse_s, coarse_s);
    for (size_t i = fine_windows; i > 0; --i, ++fine_records)
        write(RecordTier::fine, now - static_cast<double>(i) * fine_s, fine_s);
    writer->sync();
    std::printf("{\"fine_records\": %zu, \"coarse_records\": %zu, \"record_raw_bytes\": %zu}\n", fine_records,
                coarse_records, static_cast<size_t>(raw_bytes / (fine_records + coarse_records + 1)));
    return 0;
}
