// The chaos soak (docs/security.md, issue #13): the real agent, with throttle and
// kill rules at process and cgroup scope, under the churn the world makes rather
// than our polite writers: writers SIGKILLed by the test or exiting on their own
// while throttled or being killed, thousands of short-lived processes, bursts
// from threads and children, renames to hostile names, writers resuming
// themselves from a SIGSTOP throttle, cgroups and loop-mounted filesystems
// coming and going under writers, policy reloads (one invalid). Every random
// choice comes from one seeded PRNG: the seed is printed, and DW_CHAOS_SEED=N
// replays it (DW_CHAOS_SECONDS shortens the chaos when working on the test).
// At the end: the agent is alive and answers; each tracked writer's bytes as
// the agent reports them equal its file's size; /metrics' action counters
// equal the action events; nothing the test started is left stopped or frozen,
// neither while the agent runs nor after its SIGTERM exit.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <list>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "control/control_client.h"
#include "support/agent_run.h"
#include "support/policy_yaml.h"
#include "support/scratch.h"
#include "support/spawn.h"
#include "support/stale_fixtures.h"

using namespace diskwatch::test;
using nlohmann::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr long long kMiB = 1 << 20;
const std::string kChaosWriter = DW_CHAOS_WRITER;
const std::vector<std::string> kRuleNames = {"throttle-process", "kill-process", "throttle-cgroup", "kill-cgroup",
                                             "alert-process"};

unsigned long long chaos_seed()
{
    if (const char *given = std::getenv("DW_CHAOS_SEED"); given && *given)
        return std::stoull(given);
    return (static_cast<unsigned long long>(std::random_device{}()) << 32) ^ std::random_device{}();
}

std::chrono::seconds chaos_duration()
{
    if (const char *given = std::getenv("DW_CHAOS_SECONDS"); given && *given)
        return std::chrono::seconds(std::stoi(given));
    return std::chrono::seconds(150);
}

// The policy: low rates, so the rules hold for the chaos writers and not for
// anything else on the machine (they match only the dwc- names and cgroups).
// `process_rate` varies between reloads; the rule names do not.
std::string chaos_policy(const std::string &process_rate)
{
    return PolicyYaml()
        .interval("250ms")
        .rule("throttle-process")
        .match("comm", {"dwc-thr*"})
        .when(process_rate, "500ms")
        .action("throttle")
        .set("throttle_to", "256KiB/s")
        .set("throttle_for", "4s")
        .rule("kill-process")
        .match("comm", {"dwc-kill*"})
        .when(process_rate, "500ms")
        .action("kill")
        .set("kill_grace", "1s")
        .rule("throttle-cgroup")
        .cgroup_scope()
        .match("cgroup", {"/dwc-chaos-*/dwc-thr-*"})
        .when("1MiB/s", "500ms")
        .action("throttle")
        .set("throttle_to", "512KiB/s")
        .set("throttle_for", "3s")
        .rule("kill-cgroup")
        .cgroup_scope()
        .match("cgroup", {"/dwc-chaos-*/dwc-kill-*"})
        .when("2MiB/s", "1s")
        .action("kill")
        .set("kill_grace", "500ms")
        .rule("alert-process")
        .match("comm", {"dwc-plain*"})
        .when("2MiB/s", "1s")
        .action("alert");
}

// A policy the agent must refuse on SIGHUP (an unknown key), keeping the old one.
std::string invalid_policy()
{
    return "interval: 250ms\nrules:\n  - name: throttle-process\n    when: {write_rte: 1MiB/s}\n    action: alert\n";
}

long long file_size(const std::string &path)
{
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<long long>(st.st_size) : 0;
}

// A small file of /proc or cgroupfs, read with read(2): the process (or
// cgroup) may be gone between open and read, and libstdc++'s filebuf throws
// std::ios_base::failure on that read's ESRCH/ENODEV. Empty when gone.
std::string read_small_file(const std::string &path)
{
    std::string text;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return text;
    char buffer[4096];
    ssize_t got;
    while ((got = ::read(fd, buffer, sizeof(buffer))) > 0)
        text.append(buffer, static_cast<size_t>(got));
    ::close(fd);
    return text;
}

// A process's state letter (field 3 of /proc/PID/stat, after the comm's
// last ')'); 0 when it is gone.
char state_of(pid_t pid)
{
    const std::string text = read_small_file("/proc/" + std::to_string(pid) + "/stat");
    const auto close = text.rfind(')');
    return close != std::string::npos && close + 2 < text.size() ? text[close + 2] : 0;
}

bool alive(pid_t pid)
{
    const char state = state_of(pid);
    return state != 0 && state != 'Z' && state != 'X';
}

// Every process started by this test binary, however far down (the writers'
// children and grandchildren inherit the environment their parent was
// exec'd with, DW_TEST_OWNER included), with its state.
std::map<pid_t, char> our_processes()
{
    const std::string mark = std::string(kOwnerEnvironment) + "=" + owner_tag();
    std::map<pid_t, char> found;
    std::error_code ec;
    for (const auto &entry : fs::directory_iterator("/proc", ec)) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        const std::string environ_text = read_small_file(entry.path() / "environ");
        if (environ_text.find(mark + '\0') == std::string::npos && !environ_text.ends_with(mark))
            continue;
        const pid_t pid = std::stoi(name);
        found[pid] = state_of(pid);
    }
    return found;
}

std::string stopped_processes()
{
    std::string stopped;
    for (const auto &[pid, state] : our_processes())
        if (state == 'T' || state == 't')
            stopped += " " + std::to_string(pid);
    return stopped;
}

bool cgroup_frozen(const std::string &path)
{
    std::istringstream in(read_small_file(path + "/cgroup.events"));
    std::string key, value;
    while (in >> key >> value)
        if (key == "frozen")
            return value != "0";
    return false;
}

std::map<std::string, double> action_counters(const std::string &page)
{
    std::map<std::string, double> counters;
    static const std::regex sample(R"re(^ebpf_diskwatch_actions_total\{(.*)\} ([0-9.e+]+)$)re");
    static const std::regex label(R"re((rule|action)="([^"]*)")re");
    std::istringstream lines(page);
    std::string line;
    std::smatch match;
    while (std::getline(lines, line)) {
        if (!std::regex_match(line, match, sample))
            continue;
        const std::string labels = match[1];
        std::string rule, action;
        for (std::sregex_iterator it(labels.begin(), labels.end(), label), end; it != end; ++it)
            ((*it)[1] == "rule" ? rule : action) = (*it)[2];
        // Series at 0 are the ones declared for every rule and action at the
        // start (docs/metrics.md): no event counts them, and they must stay 0.
        const double value = std::stod(match[2]);
        if (value != 0)
            counters[rule + "/" + action] += value;
    }
    return counters;
}

std::map<std::string, double> action_events(const std::vector<json> &events)
{
    std::map<std::string, double> counted;
    for (const auto &event : events)
        if (event.value("event", "") == "action")
            counted[event.value("rule", "") + "/" + event.value("action", "")] += 1;
    return counted;
}

std::string dump(const std::map<std::string, double> &counts)
{
    std::string text;
    for (const auto &[key, n] : counts)
        text += " " + key + "=" + std::to_string(static_cast<long long>(n));
    return text;
}

// Waits until the agent has answered a SIGHUP: more policy.reload events than `before`.
bool reload_answered(const AgentRun &agent, size_t before)
{
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    do {
        if (count_events(agent.events(), "policy.reload") > before)
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (Clock::now() < deadline);
    return false;
}

// A writer started by the chaos: `exact` when its file survives (the stable disk).
struct Writer {
    std::string file;
    std::string comm;
    bool exact = true;
    std::optional<ChildProcess> process;
    std::optional<int> status;  // once reaped
    std::set<pid_t> checked;    // its pids (its own, its children's) whose bytes were checked
    pid_t pid() const { return process->pid(); }
};

// The files a tracked writer and its children wrote, by pid: each one's own
// file, so its size is exactly the bytes that pid wrote.
std::map<pid_t, std::string> files_by_pid(const Writer &writer)
{
    std::map<pid_t, std::string> files = {{writer.pid(), writer.file}};
    const std::string prefix = fs::path(writer.file).filename().string() + ".pid";
    std::error_code ec;
    for (const auto &entry : fs::directory_iterator(fs::path(writer.file).parent_path(), ec)) {
        const std::string name = entry.path().filename();
        if (name.rfind(prefix, 0) == 0)
            files[std::stoi(name.substr(prefix.size()))] = entry.path();
    }
    return files;
}

// Each tracked writer's bytes as the agent reports them (its control socket's
// `snapshot`, by process: docs/control.md) against its files' sizes. Each pid
// (the writer's own, each child's) is checked at the first check after it is
// gone, whatever the rest of its family does: the agent keeps a bounded number
// of finished writers, and thousands of short-lived ones later it may have
// forgotten one (a writer whose child stayed alive for a minute and more was).
// The living are checked at the end.
struct ExactCheck {
    size_t checked = 0;
    std::string mismatches;
    int unanswered = 0;
    std::string last_error;

    // False when the agent did not answer.
    bool check(const std::string &control_socket, std::list<Writer> &writers, bool living_too)
    {
        std::vector<std::pair<Writer *, pid_t>> due;
        std::map<pid_t, long long> expected;
        for (auto &writer : writers) {
            if (!writer.exact)
                continue;
            for (const auto &[pid, file] : files_by_pid(writer)) {
                if (writer.checked.count(pid) || (alive(pid) && !living_too))
                    continue;
                due.emplace_back(&writer, pid);
                expected[pid] = file_size(file);
            }
        }
        if (due.empty())
            return true;
        std::string error;
        const auto snapshot = diskwatch::control::send_request(
            control_socket, {{"cmd", "snapshot"}, {"by", "process"}}, std::chrono::seconds(30), &error);
        if (!snapshot || !snapshot->value("ok", false)) {
            last_error = error + (snapshot ? snapshot->dump() : "");
            ++unanswered;
            return false;  // asked again at the next check
        }
        std::map<pid_t, long long> reported;
        for (const auto &row : snapshot->at("report").at("rows"))
            reported[row.at("pid").get<pid_t>()] += row.at("total_bytes").get<long long>();
        for (const auto &[pid, bytes] : expected) {
            const long long seen = reported.count(pid) ? reported[pid] : 0;
            if (seen != bytes)
                mismatches += "pid " + std::to_string(pid) + ": its file holds " + std::to_string(bytes) +
                              " bytes, the agent says " + (reported.count(pid) ? std::to_string(seen) : "nothing (no row)") + "\n";
        }
        for (auto &[writer, pid] : due)
            writer->checked.insert(pid);
        checked += expected.size();
        return true;
    }
};

// A scratch cgroup that comes and goes, with what runs in it.
struct ChurnedCgroup {
    std::unique_ptr<Cgroup2Child> cgroup;
    bool throttled = false;  // matched by throttle-cgroup (else kill-cgroup or no rule)
    std::optional<ChildProcess> churn;
};

struct Tally {
    int writers = 0, killed_by_test = 0, termed_by_test = 0, cgroups_made = 0, cgroups_removed = 0, mounts_made = 0,
        mounts_detached = 0, reloads = 0, reloads_unanswered = 0, cgroup_churners = 0;
    bool invalid_sent = false;
};

}  // namespace

TEST_CASE("agent chaos: killed, renamed, self-resuming writers, process churn, cgroups and mounts coming and going, "
          "reloads, and the agent lives, counts exactly and leaves nothing stopped or frozen",
          "[chaos][agent][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    const unsigned long long seed = chaos_seed();
    const auto duration = chaos_duration();
    std::cout << "chaos seed " << seed << " (replay: DW_CHAOS_SEED=" << seed << "), " << duration.count() << " s"
              << std::endl;
    INFO("chaos seed " << seed << " (replay: DW_CHAOS_SEED=" << seed << ")");
    std::mt19937_64 rng(seed);
    const auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
    const auto between = [&](long long low, long long high) { return std::uniform_int_distribution<long long>(low, high)(rng); };

    LoopMount stable(2048);     // the tracked writers: their files survive, so their sizes are exact
    LoopMount churn_disk(256);  // only the two steady churners write here: its total is exact too
    Cgroup2Child scratch("dwc-chaos");
    const std::string scratch_name = scratch.relative_path().substr(1);
    Cgroup2Child steady_throttled(scratch_name + "/dwc-thr");
    Cgroup2Child steady_plain(scratch_name + "/dwc-plain");
    AgentRun agent(chaos_policy("1MiB/s"), {"--metrics-listen", "127.0.0.1:0"});
    REQUIRE(agent.started());
    const std::string control_socket = agent.state_dir() + "/control.sock";

    std::list<ChurnedCgroup> cgroups;
    std::list<std::unique_ptr<LoopMount>> mounts;
    std::list<Writer> writers;  // declared last: killed first, however the test ends
    std::vector<ChildProcess> steady_churn;
    steady_churn.push_back(ChildProcess::start({kChaosWriter, "churn", "--dir", churn_disk.path(), "--seed",
                                                std::to_string(rng()), "--rate", "15", "--in-flight", "6"}));
    steady_churn.push_back(ChildProcess::start({kChaosWriter, "churn", "--dir", churn_disk.path(), "--seed",
                                                std::to_string(rng()), "--rate", "15", "--in-flight", "6", "--cgroup",
                                                steady_throttled.path()}));
    Tally tally;

    const auto launch_writer = [&](const std::string &directory, bool exact, const std::string &cgroup_path) {
        static const std::array<std::string, 3> families = {"dwc-thr", "dwc-kill", "dwc-plain"};
        const std::string comm = families[static_cast<size_t>(between(0, 2))] + std::to_string(tally.writers % 10);
        const std::string file = directory + "/w" + std::to_string(tally.writers++);
        std::vector<std::string> argv = {kChaosWriter, "tracked", "--file", file, "--comm", comm,
                                         "--seed", std::to_string(rng()), "--threads", std::to_string(between(1, 3)),
                                         "--bytes", std::to_string(16 * kMiB)};
        if (chance(0.4))
            argv.insert(argv.end(), {"--children", "1"});
        if (chance(0.5))
            argv.insert(argv.end(), {"--hostile-names", "1"});
        if (chance(0.5))
            argv.insert(argv.end(), {"--self-resume", "1"});
        if (chance(0.3))
            argv.insert(argv.end(), {"--ignore-sigterm", "1"});
        if (chance(0.4))
            argv.insert(argv.end(), {"--exit-after-ms", std::to_string(between(1000, 20000))});
        if (!cgroup_path.empty())
            argv.insert(argv.end(), {"--cgroup", cgroup_path});
        Writer &writer = writers.emplace_back();
        writer.file = file;
        writer.comm = comm;
        writer.exact = exact;
        writer.process.emplace(ChildProcess::start(argv));
    };
    const auto living = [&] {
        std::vector<Writer *> found;
        for (auto &writer : writers)
            if (!writer.status)
                found.push_back(&writer);
        return found;
    };
    const auto reap_writers = [&] {
        for (auto &writer : writers)
            if (!writer.status && !alive(writer.pid()))
                writer.status = writer.process->wait(std::chrono::seconds(10));
    };
    const auto random_cgroup = [&]() -> std::string {
        const long long pick = between(0, static_cast<long long>(cgroups.size()) + 2);
        if (pick == 0)
            return "";
        if (pick == 1)
            return steady_throttled.path();
        if (pick == 2)
            return steady_plain.path();
        auto it = cgroups.begin();
        std::advance(it, pick - 3);
        return it->cgroup->path();
    };

    // Reloads: one at a time (signals coalesce), each answered by a policy.reload event.
    std::optional<size_t> reload_pending;  // policy.reload events before the SIGHUP
    Clock::time_point reload_sent;
    const std::array<std::string, 3> rates = {"1MiB/s", "768KiB/s", "2MiB/s"};
    const auto chaos_start = Clock::now();
    const auto invalid_at = chaos_start + duration * between(30, 70) / 100;
    bool agent_died = false;
    ExactCheck exact;
    auto next_exact_check = chaos_start + std::chrono::seconds(5);

    while (Clock::now() - chaos_start < duration) {
        std::this_thread::sleep_for(std::chrono::milliseconds(between(50, 400)));
        agent.wait_for_stderr("\x01", std::chrono::milliseconds(1));  // keep its stderr pipe drained
        if (!alive(agent.pid())) {
            agent_died = true;
            break;
        }
        reap_writers();
        if (Clock::now() >= next_exact_check) {
            exact.check(control_socket, writers, false);
            next_exact_check = Clock::now() + std::chrono::seconds(5);
        }
        if (reload_pending) {
            const auto events = agent.events();
            if (count_events(events, "policy.reload") > *reload_pending)
                reload_pending.reset();
            else if (Clock::now() - reload_sent > std::chrono::seconds(20)) {
                ++tally.reloads_unanswered;
                reload_pending.reset();
            }
        }
        const long long roll = between(0, 99);
        const auto now_living = living();
        if (roll < 30) {
            if (now_living.size() < 10)
                launch_writer(stable.path(), true, random_cgroup());
        } else if (roll < 45) {
            // SIGKILL, preferring a writer the agent holds stopped or whose cgroup it froze.
            std::vector<Writer *> held;
            for (Writer *writer : now_living)
                if (state_of(writer->pid()) == 'T')
                    held.push_back(writer);
            const auto &pool = !held.empty() && chance(0.7) ? held : now_living;
            if (!pool.empty()) {
                pool[static_cast<size_t>(between(0, static_cast<long long>(pool.size()) - 1))]->process->signal(SIGKILL);
                ++tally.killed_by_test;
            }
        } else if (roll < 50) {
            if (!now_living.empty()) {
                now_living[static_cast<size_t>(between(0, static_cast<long long>(now_living.size()) - 1))]->process->signal(SIGTERM);
                ++tally.termed_by_test;
            }
        } else if (roll < 60) {
            if (cgroups.size() < 4) {
                const long long kind = between(0, 2);
                const std::string prefix = kind == 0 ? "/dwc-thr" : kind == 1 ? "/dwc-kill" : "/dwc-plain";
                ChurnedCgroup &made = cgroups.emplace_back();
                made.cgroup = std::make_unique<Cgroup2Child>(scratch_name + prefix);
                made.throttled = kind == 0;
                ++tally.cgroups_made;
                if (chance(0.5)) {
                    const std::string dir = stable.path() + "/cg" + std::to_string(tally.cgroups_made);
                    fs::create_directory(dir);
                    made.churn.emplace(ChildProcess::start({kChaosWriter, "churn", "--dir", dir, "--seed", std::to_string(rng()),
                                                            "--rate", "10", "--in-flight", "4", "--cgroup", made.cgroup->path()}));
                    ++tally.cgroup_churners;
                }
                launch_writer(stable.path(), true, made.cgroup->path());
            }
        } else if (roll < 67) {
            if (!cgroups.empty()) {
                // Gone under its writers: the fixture thaws it, cgroup.kill, rmdir.
                auto it = cgroups.begin();
                std::advance(it, between(0, static_cast<long long>(cgroups.size()) - 1));
                cgroups.erase(it);
                ++tally.cgroups_removed;
            }
        } else if (roll < 74) {
            if (mounts.size() < 2) {
                auto &mount = mounts.emplace_back(std::make_unique<LoopMount>(64));
                ++tally.mounts_made;
                for (long long n = between(1, 2); n > 0; --n)
                    launch_writer(mount->path(), false, random_cgroup());
            }
        } else if (roll < 80) {
            if (!mounts.empty()) {
                // Detached while its writers write on; the loop device goes when they close.
                auto it = mounts.begin();
                std::advance(it, between(0, static_cast<long long>(mounts.size()) - 1));
                (*it)->detach();
                mounts.erase(it);
                ++tally.mounts_detached;
            }
        } else if (roll < 86 && !reload_pending) {
            reload_pending = count_events(agent.events(), "policy.reload");
            if (!tally.invalid_sent && Clock::now() >= invalid_at) {
                agent.rewrite_policy(invalid_policy());
                tally.invalid_sent = true;
            } else {
                agent.rewrite_policy(chaos_policy(rates[static_cast<size_t>(between(0, 2))]));
            }
            reload_sent = Clock::now();
            agent.signal(SIGHUP);
            ++tally.reloads;
        }
    }
    if (!agent_died && !tally.invalid_sent) {
        // The dice never got there: the invalid reload is part of every run.
        reload_pending = count_events(agent.events(), "policy.reload");
        agent.rewrite_policy(invalid_policy());
        tally.invalid_sent = true;
        agent.signal(SIGHUP);
        ++tally.reloads;
    }
    const double chaos_s = std::chrono::duration<double>(Clock::now() - chaos_start).count();
    if (!agent_died && reload_pending) {
        const size_t before = *reload_pending;
        if (!reload_answered(agent, before))
            ++tally.reloads_unanswered;
    }
    // The last valid policy again, so the rules that stay are the ones the test knows.
    if (!agent_died) {
        const size_t before = count_events(agent.events(), "policy.reload");
        agent.rewrite_policy(chaos_policy("1MiB/s"));
        agent.signal(SIGHUP);
        ++tally.reloads;
        if (!reload_answered(agent, before))
            ++tally.reloads_unanswered;
    }
    std::vector<std::string> cgroup_paths = {scratch.path(), steady_throttled.path(), steady_plain.path()};
    for (const auto &made : cgroups)
        cgroup_paths.push_back(made.cgroup->path());
    const auto frozen_cgroups = [&] {
        std::string frozen;
        for (const auto &path : cgroup_paths)
            if (cgroup_frozen(path))
                frozen += " " + path;
        return frozen;
    };
    agent_died = agent_died || !alive(agent.pid());
    if (agent_died) {
        const auto exit_status = agent.stop(std::chrono::seconds(5));
        const auto events = agent.events();
        std::string last_events;
        for (size_t i = events.size() > 20 ? events.size() - 20 : 0; i < events.size(); ++i)
            last_events += events[i].dump() + "\n";
        INFO("what it left stopped (pids):" << stopped_processes() << "\nfrozen:" << frozen_cgroups());
        INFO("the agent died " << chaos_s << " s into the chaos, exit status " << exit_status.value_or(-1)
                               << "\nits stderr:\n" << agent.stderr_text() << "\nits last events:\n" << last_events);
        FAIL("the agent did not survive the chaos");
    }

    // The chaos stops: the churners end (and say what they wrote), the writers go quiet.
    long long churn_bytes = 0;
    int churn_spawned = 0, churn_failed = 0;
    for (auto &churn : steady_churn) {
        churn.signal(SIGTERM);
        const auto status = churn.wait(std::chrono::seconds(60));
        INFO(churn.out() << churn.err());
        CHECK(status == 0);
        std::smatch match;
        const std::string out = churn.out();
        REQUIRE(std::regex_search(out, match, std::regex(R"(churn spawned (\d+) failed (\d+) bytes (\d+))")));
        churn_spawned += std::stoi(match[1]);
        churn_failed += std::stoi(match[2]);
        churn_bytes += std::stoll(match[3]);
    }
    for (auto &made : cgroups)
        if (made.churn) {
            made.churn->signal(SIGTERM);
            made.churn->wait(std::chrono::seconds(60));
            const std::string out = made.churn->out();
            std::smatch match;
            if (std::regex_search(out, match, std::regex(R"(churn spawned (\d+))")))
                churn_spawned += std::stoi(match[1]);
        }
    reap_writers();
    for (Writer *writer : living())
        writer->process->signal(SIGUSR1);

    // Rules stop holding; every throttle ends. Nothing the test started may
    // stay stopped, no scratch cgroup frozen, while the agent still runs.
    std::optional<json> status;
    const auto settle_deadline = Clock::now() + std::chrono::seconds(90);
    while (true) {
        std::string error;
        status = diskwatch::control::send_request(control_socket, {{"cmd", "status"}}, std::chrono::seconds(30), &error);
        const bool quiet = status && status->value("actions", json::array()).empty() && stopped_processes().empty() &&
                           frozen_cgroups().empty();
        if (quiet || Clock::now() > settle_deadline)
            break;
        agent.wait_for_stderr("\x01", std::chrono::milliseconds(200));
    }
    INFO("status after the chaos: " << (status ? status->dump() : "no answer"));
    CHECK(stopped_processes().empty());
    CHECK(frozen_cgroups().empty());

    // Alive, and answering the CLI.
    REQUIRE(alive(agent.pid()));
    std::string status_out;
    CHECK(run({DW_BINARY, "status", "--control-socket", control_socket}, &status_out) == 0);
    REQUIRE(status);
    for (const auto &sink : status->at("sinks"))
        CHECK(sink.at("dropped") == 0);  // else the event file would not hold every action

    // Exact bytes, for the writers still alive (quiet now: their sizes hold
    // still) and any gone since the last check.
    const bool answered = exact.check(control_socket, writers, true);
    INFO("snapshot requests unanswered: " << exact.unanswered << ", the last: " << exact.last_error);
    REQUIRE(answered);
    INFO("pids whose bytes differ:\n" << exact.mismatches);
    CHECK(exact.checked >= 20);
    CHECK(exact.mismatches.empty());

    // The churn disk's total is every byte of every short-lived writer, counted once.
    httplib::Client client("127.0.0.1", status->at("metrics_port").get<int>());
    const auto metric_total = [&](const std::string &mountpoint) {
        auto page = client.Get("/metrics");
        const std::string prefix = "ebpf_diskwatch_mount_written_bytes_total{mountpoint=\"" + mountpoint + "\"";
        std::istringstream lines(page ? page->body : "");
        std::string line;
        while (std::getline(lines, line))
            if (line.rfind(prefix, 0) == 0)
                return std::stoll(line.substr(line.rfind(' ') + 1));
        return -1LL;
    };
    CHECK(metric_total(churn_disk.path()) == churn_bytes);

    // The action counters equal the action events (the sink's queue may still
    // hold the last ones: wait for the file to catch up).
    std::map<std::string, double> counters, counted;
    const auto counters_deadline = Clock::now() + std::chrono::seconds(20);
    do {
        auto page = client.Get("/metrics");
        REQUIRE(page);
        counters = action_counters(page->body);
        counted = action_events(agent.events());
        if (counters == counted)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    } while (Clock::now() < counters_deadline);
    INFO("/metrics:" << dump(counters) << "\nevents:" << dump(counted));
    CHECK(counters == counted);
    CHECK(counted["throttle-process/throttle"] + counted["throttle-cgroup/throttle"] >= 1);
    CHECK(counted["kill-process/kill"] + counted["kill-cgroup/kill"] >= 1);

    // Every reload answered; the invalid one refused, the old rules kept.
    const auto events = agent.events();
    CHECK(tally.reloads_unanswered == 0);
    CHECK(count_events(events, "policy.reload") == static_cast<size_t>(tally.reloads));
    size_t refused = 0;
    for (const auto &event : events)
        if (event.value("event", "") == "policy.reload" && event.value("ok", true) == false) {
            ++refused;
            std::vector<std::string> kept;
            for (const auto &rule : event.at("rules"))
                kept.push_back(rule.at("name"));
            CHECK(kept == kRuleNames);
        }
    CHECK(refused == 1);

    // A clean SIGTERM exit releases everything it held.
    const auto exit_status = agent.stop(std::chrono::seconds(30));
    INFO("agent stderr:\n" << agent.stderr_text());
    CHECK(exit_status == 0);
    CHECK(count_events(agent.events(), "agent.stop") == 1);
    const auto after_deadline = Clock::now() + std::chrono::seconds(10);
    while ((!stopped_processes().empty() || !frozen_cgroups().empty()) && Clock::now() < after_deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(stopped_processes().empty());
    CHECK(frozen_cgroups().empty());

    int actions = 0;
    for (const auto &[key, n] : counted)
        actions += static_cast<int>(n);
    std::cout << "chaos seed " << seed << ": " << chaos_s << " s of chaos, " << tally.writers << " tracked writers ("
              << tally.killed_by_test << " SIGKILLed, " << tally.termed_by_test << " SIGTERMed by the test), "
              << churn_spawned << " short-lived processes (" << churn_failed << " failed), " << tally.cgroups_made
              << " cgroups made (" << tally.cgroups_removed << " removed, " << tally.cgroup_churners
              << " with a churner), " << tally.mounts_made << " mounts made (" << tally.mounts_detached
              << " detached under writers), " << tally.reloads << " reloads (1 invalid), " << actions
              << " actions:" << dump(counted) << ", " << exact.checked << " pids checked exactly" << std::endl;
}
