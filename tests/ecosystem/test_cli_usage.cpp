// Usage errors (docs/cli.md, "Exit codes"): every command, every kind of
// option, exits 2 with one short line on stderr; nan, inf, negative and
// out-of-range numbers are refused; a huge value is cut in the message.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "support/spawn.h"

using namespace diskwatch::test;

namespace {

struct Usage {
    int status = -1;
    std::string err;
};

Usage run_usage(std::vector<std::string> arguments)
{
    arguments.insert(arguments.begin(), DW_BINARY);
    auto process = ChildProcess::start(arguments);
    const auto status = process.wait(std::chrono::seconds(30));
    return {status.value_or(-1), process.err()};
}

size_t lines_of(const std::string &text)
{
    size_t lines = 0;
    for (char c : text)
        lines += c == '\n';
    return lines;
}

}  // namespace

TEST_CASE("every kind of usage error exits 2 with one line that says what is wrong", "[cli][usage]")
{
    const std::vector<std::vector<std::string>> cases = {
        {},                                            // no command
        {"frobnicate"},                                // unknown command
        {"top", "--bogus"},                            // unknown option
        {"top", "-d"},                                 // option without its value
        {"top", "-d", "0"},                            // below the range
        {"top", "-d", "-1"},                           // negative
        {"top", "-d", "nan"},                          // not a number, though strtod takes it
        {"top", "-d", "inf"},                          // infinite
        {"top", "-d", "1e999"},                        // overflows to infinity
        {"top", "-d", "abc"},                          // not a number
        {"top", "-n", "-1"},                           // a negative count
        {"top", "-n", "1.5"},                          // not a whole number
        {"top", "-n", "99999999999999999999"},         // out of range
        {"top", "--by", "inode"},                      // not one of the choices
        {"top", "--hooks", "kprobe"},                  // not one of the choices
        {"doctor", "--stats-seconds", "nan"},
        {"doctor", "--stats-seconds", "0"},
        {"agent", "--json-keep", "-3"},
        {"agent", "--json-keep", "inf"},
        {"agent", "--metrics-cgroups", "-5"},
        {"agent", "--json-max-size", "10MiB"},         // without --json-out
        {"check-config"},                              // missing its FILE
        {"check-config", "a.yaml", "b.yaml"},          // one too many
        {"release"},                                   // missing its TARGET
        {"release", "42", "--for", "soon"},            // not a duration
        {"release", "42", "--for", "0s"},              // no snooze at all
        {"release", "42", "--for", "30d"},             // not a unit; and more than a week
        {"status", "--json", "extra"},                 // an argument it does not take
    };
    for (const auto &arguments : cases) {
        const Usage usage = run_usage(arguments);
        std::string command;
        for (const auto &argument : arguments)
            command += argument + " ";
        INFO("ebpf-diskwatch " << command << "-> " << usage.status << ": " << usage.err);
        CHECK(usage.status == 2);
        CHECK(lines_of(usage.err) == 1);
        CHECK(usage.err.size() < 600);
        CHECK(usage.err.find("1.79769") == std::string::npos);  // CLI11's "range 0 to DBL_MAX"
    }
}

TEST_CASE("a huge value in a usage error is cut to a readable length", "[cli][usage]")
{
    const std::string huge(100000, 'x');  // under MAX_ARG_STRLEN (128 KiB)
    for (const auto &arguments : std::vector<std::vector<std::string>> {
             {"top", "--by", huge}, {"top", "-d", huge}, {"top", "-n", huge}, {"agent", "--json-max-size", huge,
                                                                                "--json-out", "/tmp/x"}}) {
        const Usage usage = run_usage(arguments);
        INFO(usage.err.substr(0, 700));
        CHECK(usage.status == 2);
        CHECK(usage.err.size() < 800);
        CHECK(lines_of(usage.err) == 1);
    }
}

TEST_CASE("help and version are not usage errors", "[cli][usage]")
{
    for (const auto &arguments : std::vector<std::vector<std::string>> {{"--help"}, {"--version"}, {"top", "--help"}}) {
        const Usage usage = run_usage(arguments);
        CHECK(usage.status == 0);
    }
}
