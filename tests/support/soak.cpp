#include "support/soak.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <stdexcept>
#include <thread>

namespace diskwatch::test {

ShortLivedWriters run_short_lived_writers(const std::string &file_base, const std::string &comm,
                                          std::chrono::seconds duration, int rate, int in_flight,
                                          const std::function<void(std::chrono::steady_clock::duration)> &after_fork)
{
    ShortLivedWriters result;
    std::map<pid_t, long long> running;  // pid -> bytes it will write
    const auto reap_one = [&] {
        for (;;) {
            for (auto it = running.begin(); it != running.end(); ++it) {
                int status = 0;
                if (::waitpid(it->first, &status, WNOHANG) != it->first)
                    continue;
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                    result.bytes_written += it->second;
                else
                    ++result.failed;
                running.erase(it);
                return;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    };
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < duration) {
        while (static_cast<int>(running.size()) >= in_flight)
            reap_one();
        const long long size = 512 * (1 + result.spawned % 31);
        const std::string file = file_base + std::to_string(result.spawned % 8);
        std::this_thread::sleep_until(start + result.spawned * std::chrono::microseconds(1000000 / rate));
        const pid_t pid = ::fork();
        if (pid == 0) {
            // Only async-signal-safe calls between fork and _exit.
            ::prctl(PR_SET_NAME, comm.c_str(), 0, 0, 0);
            const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            static char buffer[512 * 31];
            long long left = size;
            while (fd >= 0 && left > 0) {
                const ssize_t got = ::write(fd, buffer, static_cast<size_t>(left));
                if (got <= 0)
                    _exit(1);
                left -= got;
            }
            _exit(fd >= 0 ? 0 : 1);
        }
        if (pid < 0) {
            while (!running.empty())
                reap_one();
            throw std::runtime_error("fork failed");
        }
        running[pid] = size;
        ++result.spawned;
        after_fork(std::chrono::steady_clock::now() - start);
    }
    while (!running.empty())
        reap_one();
    return result;
}

long long vm_rss_kib(pid_t pid)
{
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0)
            return std::stoll(line.substr(6));
    return -1;
}

}  // namespace diskwatch::test
