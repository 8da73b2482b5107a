// What prevention is missing (resolve/prevention.h), against fixture trees
// under tests/fixtures/prevention (a root prefix each) and hostile trees made
// in a temporary directory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "resolve/prevention.h"

using namespace diskwatch;

namespace {

const std::string kFixtures = std::string(DW_FIXTURES_DIR) + "/prevention";

bool any_note_has(const std::vector<std::string> &notes, const std::string &part)
{
    return std::any_of(notes.begin(), notes.end(),
                       [&](const std::string &note) { return note.find(part) != std::string::npos; });
}

struct TempRoot {
    std::filesystem::path path;
    TempRoot()
    {
        char pattern[] = "/tmp/dw-prevention-XXXXXX";
        path = ::mkdtemp(pattern);
    }
    ~TempRoot()
    {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    void write(const std::string &relative, const std::string &text) const
    {
        std::filesystem::create_directories((path / relative).parent_path());
        std::ofstream(path / relative, std::ios::binary) << text;
    }
};

}  // namespace

TEST_CASE("logrotate: patterns of logrotate.conf, its includes and logrotate.d, with their file and line",
          "[prevention]")
{
    const auto config = read_logrotate_config(kFixtures + "/logrotate");
    std::vector<std::string> patterns;
    for (const auto &pattern : config.patterns)
        patterns.push_back(pattern.pattern + " @" + pattern.file + ":" + std::to_string(pattern.line));
    CHECK(patterns == std::vector<std::string>{
                          "/var/log/nginx/*.log @/etc/logrotate.d/nginx:2",
                          "/var/log/nginx/odd name.log @/etc/logrotate.d/nginx:2",
                          "/srv/www/*/logs/access.log @/etc/logrotate.d/nginx:3",
                          "/var/log/single-quoted.log @/etc/logrotate.d/nginx:17",
                          "/opt/extra/extra.log @/etc/logrotate.extra/only.conf:1",
                          "/var/log/wtmp @/etc/logrotate.conf:10",
                      });
    // app.dpkg-old is a package manager's leftover, which logrotate skips.
    CHECK(config.files_read == std::vector<std::string>{"/etc/logrotate.conf", "/etc/logrotate.d/nginx",
                                                        "/etc/logrotate.extra/only.conf"});
    CHECK(any_note_has(config.notes, "/etc/logrotate.d/zz-binary: not text"));
}

TEST_CASE("logrotate: a path is covered as glob(3) would expand the pattern", "[prevention]")
{
    const std::string root = kFixtures + "/logrotate";
    const auto nginx = logrotate_covers("/var/log/nginx/access.log", root);
    CHECK(nginx.covered);
    REQUIRE(nginx.match);
    CHECK(nginx.match->pattern == "/var/log/nginx/*.log");
    CHECK(nginx.match->file == "/etc/logrotate.d/nginx");
    CHECK(nginx.match->line == 2);
    CHECK(logrotate_covers("/var/log/nginx/odd name.log", root).covered);
    CHECK(logrotate_covers("/srv/www/shop/logs/access.log", root).covered);
    // FNM_PATHNAME: '*' does not cross a '/'.
    CHECK_FALSE(logrotate_covers("/srv/www/shop/deep/logs/access.log", root).covered);
    CHECK_FALSE(logrotate_covers("/var/log/nginx/old/access.log", root).covered);
    CHECK(logrotate_covers("/opt/extra/extra.log", root).covered);
    // commented out, in a skipped file, in a script: not patterns
    CHECK_FALSE(logrotate_covers("/var/log/commented/x.log", root).covered);
    CHECK_FALSE(logrotate_covers("/var/log/app/x.log", root).covered);
    CHECK_FALSE(logrotate_covers("/var/log/garbage", root).covered);
    CHECK_FALSE(logrotate_covers("/var/run/nginx.pid", root).covered);
}

TEST_CASE("logrotate: an include loop is read once, with a note", "[prevention]")
{
    const auto config = read_logrotate_config(kFixtures + "/logrotate-loop");
    REQUIRE(config.patterns.size() == 2);
    CHECK(config.patterns[0].pattern == "/var/log/b.log");
    CHECK(config.patterns[1].pattern == "/var/log/a.log");
    CHECK(any_note_has(config.notes, "a loop"));
}

TEST_CASE("logrotate: no configuration, an unreadable one, a 10 MB file and a FIFO: notes, promptly",
          "[prevention]")
{
    TempRoot root;
    CHECK(any_note_has(read_logrotate_config(root.path).notes, "/etc/logrotate.conf"));

    root.write("etc/logrotate.conf", "include /etc/logrotate.d\ninclude relative/path\n/var/log/x.log {\n}\n");
    root.write("etc/logrotate.d/huge", std::string(size_t{10} << 20, 'a'));
    REQUIRE(::mkfifo((root.path / "etc/logrotate.d/fifo").c_str(), 0644) == 0);
    root.write("etc/logrotate.d/unclosed", "/var/log/unclosed.log {\n  rotate 1\n");
    root.write("etc/logrotate.d/no-block", "/var/log/no-block.log\n");
    const auto start = std::chrono::steady_clock::now();
    const auto config = read_logrotate_config(root.path);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
    CHECK(any_note_has(config.notes, "/etc/logrotate.d/huge: larger than"));
    CHECK(any_note_has(config.notes, "/etc/logrotate.d/fifo"));
    CHECK(any_note_has(config.notes, "include without an absolute path"));
    CHECK(any_note_has(config.notes, "/etc/logrotate.d/unclosed: ends inside a block"));
    CHECK(any_note_has(config.notes, "no '{' block"));
    CHECK(logrotate_match(config, "/var/log/x.log"));
    CHECK(logrotate_match(config, "/var/log/unclosed.log"));
    CHECK_FALSE(logrotate_match(config, "/var/log/no-block.log"));
}

TEST_CASE("docker: daemon.json's log driver and max-size", "[prevention]")
{
    const auto none = read_docker_daemon_logging(kFixtures + "/docker-no-opts");
    CHECK(none.config_found);
    CHECK(none.log_driver == "json-file");
    CHECK_FALSE(none.max_size);
    CHECK(none.notes.empty());

    const auto capped = read_docker_daemon_logging(kFixtures + "/docker-max-size");
    CHECK(capped.log_driver == "json-file");
    CHECK(capped.max_size == std::optional<std::string>("10m"));
    CHECK(capped.max_file == std::optional<std::string>("3"));

    const auto bad = read_docker_daemon_logging(kFixtures + "/docker-bad");
    CHECK_FALSE(bad.config_found);
    CHECK(bad.log_driver == "json-file");
    CHECK(any_note_has(bad.notes, "not a JSON object"));

    const auto absent = read_docker_daemon_logging(kFixtures + "/logrotate");
    CHECK_FALSE(absent.config_found);
    CHECK(absent.log_driver == "json-file");
    CHECK(absent.notes.empty());
}

TEST_CASE("docker: a container's LogConfig from its hostconfig.json", "[prevention]")
{
    const std::string docker_root = kFixtures + "/docker-root";
    const auto capped =
        read_container_logging("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", docker_root);
    CHECK(capped.found);
    CHECK(capped.log_driver == "json-file");
    CHECK(capped.max_size == std::optional<std::string>("50m"));
    CHECK(capped.max_file == std::optional<std::string>("5"));

    const auto unbounded =
        read_container_logging("fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210", docker_root);
    CHECK(unbounded.found);
    CHECK(unbounded.log_driver == "json-file");
    CHECK_FALSE(unbounded.max_size);

    const auto missing =
        read_container_logging("aaaa000000000000000000000000000000000000000000000000000000000001", docker_root);
    CHECK_FALSE(missing.found);
    CHECK(any_note_has(missing.notes, "hostconfig.json"));

    const auto traversal = read_container_logging("../../../etc", docker_root);
    CHECK_FALSE(traversal.found);
    CHECK(any_note_has(traversal.notes, "not a Docker container id"));
}

TEST_CASE("journald: no explicit cap in a commented default journald.conf", "[prevention]")
{
    const auto config = read_journald_config(kFixtures + "/journald-default");
    CHECK(config.files_read == std::vector<std::string>{"/etc/systemd/journald.conf"});
    CHECK_FALSE(config.system_max_use);
    CHECK_FALSE(config.storage);
    CHECK_FALSE(config.persistent);  // auto, and no /var/log/journal
    CHECK(config.notes.empty());
    CHECK(kJournaldDefaultMaxUseCapBytes == uint64_t{4} * 1024 * 1024 * 1024);
}

TEST_CASE("journald: drop-ins override the main file in name order, /etc hiding /usr/lib", "[prevention]")
{
    const auto config = read_journald_config(kFixtures + "/journald-capped");
    CHECK(config.files_read == std::vector<std::string>{
                                   "/etc/systemd/journald.conf",
                                   "/usr/lib/systemd/journald.conf.d/10-vendor.conf",
                                   "/run/systemd/journald.conf.d/15-runtime.conf",
                                   "/etc/systemd/journald.conf.d/20-local.conf",
                               });
    CHECK(config.system_max_use == std::optional<std::string>("2G"));
    CHECK(config.system_keep_free == std::optional<std::string>("500M"));
    CHECK_FALSE(config.runtime_max_use);  // emptied by 15-runtime.conf: the default again
    CHECK(config.storage == std::optional<std::string>("auto"));
    CHECK(config.persistent);  // auto, and /var/log/journal exists
    CHECK(config.notes.empty());
}

TEST_CASE("systemd units: LogsDirectory= and LogsDirectoryQuota= with drop-ins", "[prevention]")
{
    const std::string root = kFixtures + "/units";
    const auto app = read_unit_logs_directory("app.service", root);
    CHECK(app.unit_found);
    CHECK(app.fragment == "/usr/lib/systemd/system/app.service");
    CHECK(app.drop_ins == std::vector<std::string>{"/usr/lib/systemd/system/app.service.d/50-vendor.conf",
                                                   "/etc/systemd/system/app.service.d/60-local.conf"});
    CHECK(app.logs_directory == std::vector<std::string>{"app2"});
    CHECK_FALSE(app.logs_directory_quota);  // reset by 60-local.conf
    CHECK(app.logs_directory_accounting == std::optional<std::string>("yes"));

    const auto worker = read_unit_logs_directory("worker@eu.service", root);
    CHECK(worker.unit_found);
    CHECK(worker.fragment == "/lib/systemd/system/worker@.service");
    CHECK(worker.logs_directory == std::vector<std::string>{"worker/%i"});
    CHECK(worker.logs_directory_quota == std::optional<std::string>("10%"));

    const auto masked = read_unit_logs_directory("masked.service", root);
    CHECK_FALSE(masked.unit_found);
    CHECK(any_note_has(masked.notes, "masked"));

    CHECK_FALSE(read_unit_logs_directory("absent.service", root).unit_found);
    const auto hostile = read_unit_logs_directory("../../etc/passwd", root);
    CHECK_FALSE(hostile.unit_found);
    CHECK(any_note_has(hostile.notes, "not a unit name"));
}

TEST_CASE("systemd version from libsystemd-shared's file name", "[prevention]")
{
    CHECK(installed_systemd_version(kFixtures + "/units") == std::optional<unsigned>(252));
    CHECK(installed_systemd_version(kFixtures + "/fedora") == std::optional<unsigned>(256));
    CHECK_FALSE(installed_systemd_version(kFixtures + "/logrotate"));
    CHECK(kLogsDirectoryQuotaSinceSystemd == 258);
}
