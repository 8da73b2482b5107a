// The hardened systemd unit (systemd-analyze verify and security) and the
// Debian package (cpack -G DEB, dpkg-deb) with everything it must carry.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <regex>
#include <sstream>

#include "ecosystem/ecosystem_support.h"
#include "support/spawn.h"

using namespace diskwatch::test;
using namespace std::chrono_literals;

namespace {

const std::string kUnit = DW_SOURCE_DIR "/packaging/ebpf-diskwatch.service";

std::string tool(const std::string &name, const std::string &package)
{
    std::string path = find_tool(name);
    if (path.empty())
        FAIL(name + " is not installed (Debian package " + package + "; scripts/install-deps.sh --test)");
    return path;
}

// Value of the last `Key=` line of the unit.
std::string unit_setting(const std::string &unit, const std::string &key)
{
    std::istringstream lines(unit);
    std::string line, value;
    while (std::getline(lines, line))
        if (line.rfind(key + "=", 0) == 0)
            value = line.substr(key.size() + 1);
    return value;
}

// What dpkg knows of the package: "install ok installed", or empty when
// dpkg has never heard of it.
std::string package_status(const std::string &dpkg_query)
{
    std::string status;
    if (run({dpkg_query, "-W", "-f=${Status}", "ebpf-diskwatch"}, &status) != 0)
        return {};
    return status;
}

std::string replace_all(std::string text, const std::string &from, const std::string &to)
{
    for (size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size())
        text.replace(at, from.size(), to);
    return text;
}

}  // namespace

TEST_CASE("the unit asks for least privilege and the documented paths", "[packaging][systemd]")
{
    const std::string unit = read_file(kUnit);
    CHECK(unit_setting(unit, "CapabilityBoundingSet") == "CAP_BPF CAP_PERFMON CAP_SYS_RESOURCE CAP_KILL CAP_SYS_PTRACE "
                                                         "CAP_DAC_READ_SEARCH CAP_DAC_OVERRIDE CAP_SYS_ADMIN");
    CHECK(unit_setting(unit, "AmbientCapabilities") == unit_setting(unit, "CapabilityBoundingSet"));
    // CAP_SYS_ADMIN was left out until the systemd guest (scripts/systemd-guest)
    // showed the agent cannot load without it on kernels before 6.13: libbpf
    // 1.1 lists module BTFs for a weak kfunc vmlinux lacks. The unit says why.
    CHECK_THAT(unit, Catch::Contains("BPF_BTF_GET_NEXT_ID"));
    CHECK(unit_setting(unit, "ProtectSystem") == "strict");
    CHECK(unit_setting(unit, "NoNewPrivileges") == "yes");
    CHECK(unit_setting(unit, "ExecReload") == "/bin/kill -HUP $MAINPID");
    CHECK_THAT(unit_setting(unit, "ExecStart"),
               Catch::StartsWith("/usr/sbin/ebpf-diskwatch agent --config /etc/ebpf-diskwatch/policy.yaml"));
    CHECK(unit_setting(unit, "RuntimeDirectory") == "ebpf-diskwatch");  // /run/ebpf-diskwatch/control.sock
    // Ready when attached (sd_notify), a watchdog on the main loop, and only
    // the main process may notify (its guard inherits the environment).
    CHECK(unit_setting(unit, "Type") == "notify");
    CHECK(unit_setting(unit, "NotifyAccess") == "main");
    CHECK_FALSE(unit_setting(unit, "WatchdogSec").empty());
}

TEST_CASE("systemd-analyze verifies the unit and rates its exposure as OK", "[packaging][systemd]")
{
    const std::string analyze = tool("systemd-analyze", "systemd");
    TempDir dir("dw-unit-");
    // The unit as installed, pointing at this build's binary (verify checks
    // that every Exec= program exists).
    write_file(dir.file("ebpf-diskwatch.service"),
               replace_all(read_file(kUnit), "/usr/sbin/ebpf-diskwatch", DW_BINARY));

    std::vector<std::string> verify = {analyze, "verify"};
    if (find_tool("man").empty()) {
        WARN("man is not installed: Documentation=man:ebpf-diskwatch(8) is not checked");
        verify.push_back("--man=no");
    } else {
        // Documentation=man:ebpf-diskwatch(8) must resolve: point man at our page.
        std::filesystem::create_directories(dir.file("man/man8"));
        std::filesystem::copy_file(DW_SOURCE_DIR "/packaging/ebpf-diskwatch.8", dir.file("man/man8/ebpf-diskwatch.8"));
        ::setenv("MANPATH", dir.file("man").c_str(), 1);
    }
    verify.push_back(dir.file("ebpf-diskwatch.service"));
    std::string output;
    int status = run(verify, &output, 120s);
    ::unsetenv("MANPATH");
    INFO(output);
    CHECK(status == 0);
    CHECK(output.empty());

    // Exposure 0 (locked down) to 10 (unprotected); the threshold is x10.
    status = run({analyze, "security", "--offline=yes", "--threshold=50", dir.file("ebpf-diskwatch.service")},
                 &output, 120s);
    INFO(output);
    CHECK(status == 0);
}

TEST_CASE("cpack builds a .deb with binary, unit, policy, man page, completion and docs", "[packaging][deb]")
{
    const std::string dpkg_deb = tool("dpkg-deb", "dpkg");
    TempDir dir("dw-deb-");
    const std::string deb = build_deb(dir);
    std::string output;
    CHECK_THAT(deb, Catch::EndsWith("ebpf-diskwatch_0.1.0_amd64.deb"));

    std::string contents;
    REQUIRE(run({dpkg_deb, "-c", deb}, &contents) == 0);
    INFO(contents);
    CHECK(std::regex_search(contents, std::regex(R"(-rwxr-xr-x root/root +\d+ .* \./usr/sbin/ebpf-diskwatch\n)")));
    for (const char *path : {"./usr/lib/systemd/system/ebpf-diskwatch.service",
                             "./usr/share/man/man8/ebpf-diskwatch.8.gz",
                             "./usr/share/bash-completion/completions/ebpf-diskwatch",
                             "./usr/share/doc/ebpf-diskwatch/metrics.md",
                             "./usr/share/doc/ebpf-diskwatch/integrations.md",
                             "./usr/share/doc/ebpf-diskwatch/examples/kubernetes/daemonset.yaml",
                             "./usr/share/doc/ebpf-diskwatch/examples/prometheus/alerts.yml"})
        CHECK_THAT(contents, Catch::Contains(std::string(path) + "\n"));

    std::string info;
    REQUIRE(run({dpkg_deb, "-I", deb}, &info) == 0);
    INFO(info);
    CHECK_THAT(info, Catch::Contains("Package: ebpf-diskwatch"));
    CHECK_THAT(info, Catch::Contains("libbpf1"));  // dpkg-shlibdeps found the libraries
    CHECK_THAT(info, Catch::Contains("postinst"));
    CHECK_THAT(info, Catch::Contains("prerm"));

    const bool has_policy = std::filesystem::exists(DW_SOURCE_DIR "/examples/policy.yaml");
    if (has_policy) {
        CHECK_THAT(contents, Catch::Contains("./etc/ebpf-diskwatch/policy.yaml\n"));
        std::string conffiles;
        REQUIRE(run({dpkg_deb, "-I", deb, "conffiles"}, &conffiles) == 0);
        CHECK(conffiles == "/etc/ebpf-diskwatch/policy.yaml\n");
    } else {
        WARN("examples/policy.yaml is not in this tree yet (the enforcement issue adds it): no default policy packaged");
    }

    // What is inside runs: the packaged binary answers --version.
    REQUIRE(run({dpkg_deb, "-x", deb, dir.file("root")}, &output) == 0);
    std::string version;
    CHECK(run({dir.file("root/usr/sbin/ebpf-diskwatch"), "--version"}, &version) == 0);
    CHECK_THAT(version, Catch::Contains("ebpf-diskwatch 0.1.0"));
    struct stat info_stat;
    REQUIRE(::stat(dir.file("root/usr/lib/systemd/system/ebpf-diskwatch.service").c_str(), &info_stat) == 0);
    CHECK(read_file(dir.file("root/usr/lib/systemd/system/ebpf-diskwatch.service")) == read_file(kUnit));
}

// The package as an operator meets it: dpkg installs it on this machine (its
// dependencies resolve against what is installed, its maintainer scripts run
// without systemd as PID 1), the installed agent runs and accepts the
// packaged policy, and a purge takes everything away again. The test owns
// the installation: it never touches one the machine already had, and it
// purges even when a check fails.
TEST_CASE("the .deb installs with dpkg on this machine, runs, and purges clean", "[packaging][deb][root]")
{
    if (!root_tests_can_run())
        return;
    const std::string dpkg = tool("dpkg", "dpkg");
    const std::string dpkg_query = tool("dpkg-query", "dpkg");
    const std::string before = package_status(dpkg_query);
    if (!before.empty() && before.find("not-installed") == std::string::npos) {
        const std::string why = "ebpf-diskwatch is already known to dpkg here (" + before +
                                "): not replacing the machine's own installation";
        if (std::getenv("CI") != nullptr && std::string(std::getenv("CI")) == "true")
            FAIL(why);
        WARN(why + "; not tested");
        return;
    }
    TempDir dir("dw-deb-install-");
    const std::string deb = build_deb(dir);

    struct Purge {
        std::string dpkg;
        ~Purge() { run({dpkg, "--purge", "ebpf-diskwatch"}, nullptr, 120s); }
    } purge{dpkg};
    std::string output;
    const int installed = run({dpkg, "--install", deb}, &output, 300s);
    INFO(output);
    REQUIRE(installed == 0);
    CHECK(package_status(dpkg_query) == "install ok installed");

    std::string version;
    CHECK(run({"/usr/sbin/ebpf-diskwatch", "--version"}, &version) == 0);
    CHECK_THAT(version, Catch::Contains("ebpf-diskwatch 0.1.0"));
    std::string doctor;
    CHECK(run({"/usr/sbin/ebpf-diskwatch", "doctor"}, &doctor, 120s) == 0);
    INFO(doctor);
    std::string checked;
    CHECK(run({"/usr/sbin/ebpf-diskwatch", "check-config", "/etc/ebpf-diskwatch/policy.yaml"}, &checked) == 0);
    INFO(checked);
    for (const char *path : {"/usr/lib/systemd/system/ebpf-diskwatch.service", "/usr/share/man/man8/ebpf-diskwatch.8.gz",
                             "/usr/share/bash-completion/completions/ebpf-diskwatch"})
        CHECK(std::filesystem::exists(path));

    std::string purged;
    REQUIRE(run({dpkg, "--purge", "ebpf-diskwatch"}, &purged, 120s) == 0);
    INFO(purged);
    CHECK(package_status(dpkg_query).find("install ok installed") == std::string::npos);
    for (const char *path : {"/usr/sbin/ebpf-diskwatch", "/etc/ebpf-diskwatch/policy.yaml",
                             "/usr/lib/systemd/system/ebpf-diskwatch.service"})
        CHECK_FALSE(std::filesystem::exists(path));
}
