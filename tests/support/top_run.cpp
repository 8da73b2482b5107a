#include "support/top_run.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <sstream>

#include "support/spawn.h"

namespace diskwatch::test {

TopRun run_top_while(const std::vector<std::string> &extra_arguments, int iterations, double delay_s,
                     const std::function<void()> &workload)
{
    std::vector<std::string> argv = {DW_BINARY, "top", "-b", "--json", "-n", std::to_string(iterations), "-d",
                                     std::to_string(delay_s)};
    argv.insert(argv.end(), extra_arguments.begin(), extra_arguments.end());
    auto top = ChildProcess::start(argv);
    const bool attached = top.wait_for_stderr("attached", std::chrono::seconds(30));
    INFO("top stderr: " << top.err());
    REQUIRE(attached);
    workload();
    TopRun run;
    auto status = top.wait(std::chrono::milliseconds(static_cast<long>(delay_s * 1000 * iterations) + 30000));
    run.stderr_text = top.err();
    run.exit_status = status.value_or(-1);
    std::istringstream lines(top.out());
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty())
            continue;
        INFO("top printed a line that is not JSON: " << line);
        REQUIRE_NOTHROW(run.refreshes.push_back(nlohmann::json::parse(line)));
    }
    return run;
}

WriterResult run_writer(const std::vector<std::string> &arguments)
{
    std::vector<std::string> argv = {DW_TEST_WRITER};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    auto writer = ChildProcess::start(argv);
    auto status = writer.wait(std::chrono::seconds(120));
    INFO("dw-test-writer output: " << writer.out() << writer.err());
    REQUIRE(status.has_value());
    REQUIRE(*status == 0);
    WriterResult result;
    REQUIRE(std::sscanf(writer.out().c_str(), "pid %d wrote %lld nospace %lld", &result.pid, &result.written,
                        &result.nospace_failures) >= 2);
    return result;
}

ChildProcess start_writer(const std::string &file, long long bytes, const std::string &comm,
                          const std::vector<std::string> &extra)
{
    std::vector<std::string> argv = {DW_TEST_WRITER, "--mode", "write", "--file", file, "--bytes",
                                     std::to_string(bytes), "--comm", comm, "--chunk", "65536"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return ChildProcess::start(argv);
}

std::vector<nlohmann::json> rows_where(const nlohmann::json &refresh, const std::string &key,
                                       const nlohmann::json &value)
{
    std::vector<nlohmann::json> rows;
    for (const auto &row : refresh.at("rows"))
        if (row.contains(key) && row.at(key) == value)
            rows.push_back(row);
    return rows;
}

}  // namespace diskwatch::test
