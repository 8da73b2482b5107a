// Test support for the ecosystem tests: private directories, free ports,
// waiting with a deadline, and running a real client with a file as stdin.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace diskwatch::test {

// A fresh directory under /tmp, removed with everything in it at the end.
class TempDir {
public:
    explicit TempDir(const std::string &prefix);
    ~TempDir();
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    const std::string &path() const { return path_; }
    std::string file(const std::string &name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

// Polls `condition` every 10 ms until it holds or the timeout passes.
bool wait_until(const std::function<bool()> &condition, std::chrono::milliseconds timeout);

// A UDP port on 127.0.0.1 that was free a moment ago.
int free_udp_port();

// Runs argv with stdin read from `input` (a string), output and errors in
// *output. Returns the exit status (128+signal when killed).
int run_with_stdin(const std::vector<std::string> &argv, const std::string &input, std::string *output,
                   std::chrono::milliseconds timeout = std::chrono::seconds(60));

std::string read_file(const std::string &path);
void write_file(const std::string &path, const std::string &text);

// The tool's path, or empty when it is not installed. Tests that need it
// fail with the name of the Debian package to install (scripts/install-deps.sh --test).
std::string find_tool(const std::string &name);

// Builds the .deb of this build tree (cpack -G DEB) into `dir`; returns its
// path. Fails the test when cpack is missing or makes none.
std::string build_deb(const TempDir &dir);

// Root is needed (setuid to nobody, files in /run). Without it: skipped with
// a warning, except under CI=true where the test fails.
bool root_tests_can_run();

}  // namespace diskwatch::test
