#include "support/agent_run.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/stale_fixtures.h"

namespace diskwatch::test {

namespace fs = std::filesystem;

pid_t guard_of(pid_t agent)
{
    std::ifstream children("/proc/" + std::to_string(agent) + "/task/" + std::to_string(agent) + "/children");
    pid_t pid = 0;
    children >> pid;
    return pid;
}

ScratchDir::ScratchDir() : path_(make_owned_temp_dir("dw-agent"))
{
}

ScratchDir::~ScratchDir()
{
    std::error_code ec;
    fs::remove_all(path_, ec);
}

AgentRun::AgentRun(const std::string &policy_yaml, const std::vector<std::string> &extra_arguments,
                   const std::string &state_dir, const std::string &events_path)
    : dir_(make_owned_temp_dir("dw-agent"))
{
    policy_path_ = dir_ + "/policy.yaml";
    events_path_ = events_path.empty() ? dir_ + "/events.json" : events_path;
    state_dir_ = state_dir.empty() ? dir_ + "/state" : state_dir;
    rewrite_policy(policy_yaml);
    std::vector<std::string> argv = {DW_BINARY, "agent", "--json-out", events_path_, "--state-dir", state_dir_};
    if (!policy_yaml.empty())
        argv.insert(argv.end(), {"--config", policy_path_});
    // Every test agent records (into its own directory, never the host's
    // /var/lib/ebpf-diskwatch), unless the test says where or "off".
    if (std::find(extra_arguments.begin(), extra_arguments.end(), "--recorder") == extra_arguments.end())
        argv.insert(argv.end(), {"--recorder", dir_ + "/recorder"});
    argv.insert(argv.end(), extra_arguments.begin(), extra_arguments.end());
    process_.emplace(ChildProcess::start(argv));
    // An agent that refuses to start (the tests of bad state dirs and policies)
    // exits: stop waiting then, rather than for the whole 30 s.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!started_ && std::chrono::steady_clock::now() < deadline) {
        const bool gone = process_->exited();
        started_ = wait_for([](const nlohmann::json &e) { return e.value("event", "") == "agent.start"; },
                            std::chrono::milliseconds(200))
                       .has_value();
        if (gone)
            break;
    }
}

AgentRun::~AgentRun()
{
    if (process_)
        stop(std::chrono::seconds(10));
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

void AgentRun::rewrite_policy(const std::string &policy_yaml)
{
    const std::string temp = policy_path_ + ".tmp";
    {
        std::ofstream out(temp);
        out << policy_yaml;
    }
    ::chown(temp.c_str(), 0, 0);
    ::chmod(temp.c_str(), 0644);
    fs::rename(temp, policy_path_);
}

std::optional<int> AgentRun::stop(std::chrono::milliseconds timeout)
{
    process_->signal(SIGTERM);
    return process_->wait(timeout);
}

std::string AgentRun::events_text() const
{
    std::ifstream in(events_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::vector<nlohmann::json> AgentRun::events() const
{
    std::vector<nlohmann::json> events;
    std::istringstream lines(events_text());
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty())
            continue;
        auto event = nlohmann::json::parse(line, nullptr, false);
        if (!event.is_discarded())
            events.push_back(std::move(event));
    }
    return events;
}

size_t count_events(const std::vector<nlohmann::json> &events, const std::string &type)
{
    size_t n = 0;
    for (const auto &event : events)
        n += event.value("event", "") == type;
    return n;
}

std::optional<nlohmann::json> AgentRun::wait_for(const std::function<bool(const nlohmann::json &)> &match,
                                                 std::chrono::milliseconds timeout) const
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
        for (const auto &event : events())
            if (match(event))
                return event;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } while (std::chrono::steady_clock::now() < deadline);
    return std::nullopt;
}

}  // namespace diskwatch::test
