// The host kernel's leg of the kernel matrix (docs/kernels.md). The other
// legs boot Debian's 6.1 kernel under qemu (scripts/vmtest, CTest label
// vmtest); this one holds the host's own kernel to the same two promises:
// `--hooks auto` picks the cheapest family that attaches, and that family
// attributes a known write exactly, to the right pid and mount. The forced
// families on the host are the test "every hook family this kernel attaches"
// in test_attribution.cpp.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/scratch.h"
#include "support/spawn.h"
#include "support/top_run.h"

using namespace diskwatch::test;

TEST_CASE("kernel matrix, host leg: auto chooses fentry where it attaches, else tp_btf, and attributes exactly",
          "[kernel-matrix][hooks][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    auto doctor = ChildProcess::start({DW_BINARY, "doctor", "--json"});
    auto status = doctor.wait(std::chrono::seconds(60));
    INFO(doctor.out() << doctor.err());
    REQUIRE(status == 0);
    const auto doc = nlohmann::json::parse(doctor.out());
    const std::string chosen = doc.at("chosen_hooks");
    // Every kernel that has BTF and a ring buffer (v5.8+) has tp_btf
    // (v5.5): auto never has to go further down than tp_btf there.
    const bool fentry = doc.at("hooks").at("fentry").at("available");
    CHECK(doc.at("hooks").at("tp_btf").at("available") == true);
    CHECK(chosen == (fentry ? "fentry" : "tp_btf"));
    WARN("host kernel " << doc.at("kernel").get<std::string>() << ": auto chose " << chosen);

    LoopMount disk(128);
    WriterResult writer;
    auto run = run_top_while({"--by", "process"}, 1, 3, [&] {
        writer = run_writer({"--mode", "write", "--file", disk.path() + "/host-leg", "--bytes",
                             std::to_string(16 << 20), "--comm", "host-leg"});
    });
    INFO(run.stderr_text);
    REQUIRE(run.exit_status == 0);
    CHECK_THAT(run.stderr_text, Catch::Contains("attached " + chosen + " hooks"));
    REQUIRE(run.refreshes.size() == 1);
    auto rows = rows_where(run.refreshes[0], "pid", writer.pid);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].at("mount") == disk.path());
    CHECK(rows[0].at("comm") == "host-leg");
    CHECK(rows[0].at("exited") == true);
    const long long counted = rows[0].at("write_bytes");
    INFO("counted " << counted << " bytes, the writer wrote " << writer.written);
    REQUIRE(writer.written == 16 << 20);
    CHECK(std::llabs(counted - writer.written) <= writer.written / 100);
}
