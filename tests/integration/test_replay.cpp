// `top --replay WHEN` (issue #20): the agent's flight record shown as the live
// view, and as `top --json` documents. Each test records its own: an agent
// with a 1 s recorder runs while two writers take turns on a loop-mounted
// ext4 ("phase-one", then "phase-two"), and is stopped (SIGTERM writes the
// windows still open). The record is then replayed, in batch and in tmux.
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/agent_run.h"
#include "support/policy_yaml.h"
#include "support/scratch.h"
#include "support/spawn.h"
#include "support/tmux_session.h"
#include "support/top_run.h"

using namespace diskwatch::test;
using nlohmann::json;

namespace {

constexpr long long kPhaseBytes = 12LL << 20;  // each writer's, at 4 MiB/s: 3 s
constexpr long long kPhaseRate = 4LL << 20;

double wall_now_s()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A recorder of 1 s windows (2 s coarse), 4 MiB, refreshed every 250 ms.
std::string recorder_policy()
{
    return PolicyYaml().interval("250ms").str() +
           "recorder:\n  resolution: 1s\n  coarse_resolution: 2s\n  max_size: 4MiB\n";
}

// What was recorded, and when (unix seconds).
struct Recorded {
    ScratchDir dir;
    std::string recorder = dir.path() + "/recorder";
    long long t0 = 0;       // whole seconds, after the agent started, before phase-one
    double t_end = 0;       // after the agent stopped
    long long one = 0, two = 0;  // what each writer says it wrote
};

// The agent records while phase-one writes for ~3 s, nothing for 2 s (more
// than a window: no window holds both), then phase-two for ~3 s.
void record_two_phases(const LoopMount &disk, Recorded &record)
{
    AgentRun agent(recorder_policy(), {"--recorder", record.recorder});
    REQUIRE(agent.started());
    std::this_thread::sleep_for(std::chrono::seconds(2));  // some idle windows first: more than ten in all
    record.t0 = static_cast<long long>(std::floor(wall_now_s()));
    const auto writer = [&](const std::string &comm) {
        return run_writer({"--mode", "write", "--file", disk.path() + "/" + comm + ".log", "--bytes",
                           std::to_string(kPhaseBytes), "--comm", comm, "--rate", std::to_string(kPhaseRate),
                           "--chunk", "65536"});
    };
    record.one = writer("phase-one").written;
    std::this_thread::sleep_for(std::chrono::seconds(2));
    record.two = writer("phase-two").written;
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // its last bytes in a refresh
    const auto status = agent.stop(std::chrono::seconds(20));
    INFO("agent stderr: " << agent.stderr_text());
    REQUIRE(status.has_value());
    REQUIRE(*status == 0);
    record.t_end = wall_now_s();
    REQUIRE(record.one == kPhaseBytes);
    REQUIRE(record.two == kPhaseBytes);
}

struct Replayed {
    int status = -1;
    std::string out, err;
    std::vector<json> documents;
};

// `top --replay WHEN --recorder DIR` plus `extra`, to completion; stdout's
// lines parsed as JSON when `parse`.
Replayed replay(const std::string &when, const std::string &recorder, const std::vector<std::string> &extra,
                bool parse = true)
{
    std::vector<std::string> argv = {DW_BINARY, "top", "--replay", when, "--recorder", recorder};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto top = ChildProcess::start(argv);
    Replayed run;
    run.status = top.wait(std::chrono::seconds(60)).value_or(-1);
    run.out = top.out();
    run.err = top.err();
    if (!parse)
        return run;
    std::istringstream lines(run.out);
    std::string line;
    while (std::getline(lines, line)) {
        INFO("top --replay printed a line that is not JSON: " << line);
        REQUIRE_FALSE(line.empty());
        json document = json::parse(line, nullptr, false);
        REQUIRE_FALSE(document.is_discarded());
        run.documents.push_back(std::move(document));
    }
    return run;
}

// "2026-12-05T22:01:35.856Z" as unix seconds.
double rfc3339_s(const std::string &text)
{
    struct tm when {};
    const char *rest = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &when);
    REQUIRE(rest != nullptr);
    double fraction = 0;
    if (*rest == '.')
        fraction = std::strtod(rest, nullptr);
    return static_cast<double>(::timegm(&when)) + fraction;
}

// The sum of `key` over the rows (of every document) where `field` is `value`
// and the bytes landed on `mount`.
long long sum_rows(const std::vector<json> &documents, const std::string &field, const json &value,
                   const std::string &mount, const std::string &key = "write_bytes")
{
    long long sum = 0;
    for (const auto &document : documents)
        for (const auto &row : document.at("rows"))
            if (row.value("mount", "") == mount && row.contains(field) && row.at(field) == value)
                sum += row.at(key).get<long long>();
    return sum;
}

bool shows_comm(const json &document, const std::string &comm)
{
    return !rows_where(document, "comm", comm).empty();
}

// Every document is a `top --json` refresh of grouping `by`, in time order.
void check_documents(const std::vector<json> &documents, const std::string &by)
{
    REQUIRE_FALSE(documents.empty());
    for (size_t i = 0; i < documents.size(); ++i) {
        const json &document = documents[i];
        INFO("document " << i << ": " << document.dump().substr(0, 400));
        REQUIRE(document.is_object());
        CHECK(document.at("by") == by);
        REQUIRE(document.at("rows").is_array());
        REQUIRE(document.at("mounts").is_array());
        REQUIRE(document.at("ts").is_string());
        CHECK(document.at("interval_s").get<double>() > 0);
        CHECK(document.at("interval_s").get<double>() < 3);  // a 1 s window (a first or last one may be shorter)
        if (i > 0)
            CHECK(rfc3339_s(document.at("ts")) > rfc3339_s(documents[i - 1].at("ts")));
    }
}

// tmux, or a skip (a failure under CI=true), as bpf_tests_can_run() does.
bool tmux_can_run()
{
    if (::access(kTmux.c_str(), X_OK) == 0)
        return true;
    const char *ci = std::getenv("CI");
    if (ci && std::string(ci) == "true")
        FAIL("the live view's tests need " << kTmux << "; under CI=true they fail instead of skipping");
    WARN(kTmux << " is missing: live-view test skipped (under CI=true this fails)");
    return false;
}

std::string local_time(long long unix_s, const char *format, bool utc)
{
    const time_t t = static_cast<time_t>(unix_s);
    struct tm when {};
    if (utc)
        ::gmtime_r(&t, &when);
    else
        ::localtime_r(&t, &when);
    char text[64];
    std::strftime(text, sizeof(text), format, &when);
    return text;
}

}  // namespace

TEST_CASE("top --replay --json: the recorded windows from WHEN on as top --json documents summing to each "
          "writer's bytes, every form of WHEN, before and after the record, bad times and missing records",
          "[top][replay][recorder][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    Recorded record;
    record_two_phases(disk, record);
    const std::string at_t0 = "@" + std::to_string(record.t0);

    {
        INFO("by process: phase-one, then phase-two, each summing exactly to its writer's bytes");
        const Replayed run = replay(at_t0, record.recorder, {"--json", "-n", "0"});
        INFO("stderr: " << run.err);
        REQUIRE(run.status == 0);
        check_documents(run.documents, "process");
        // The first window is the one that ends at or after t0 (it may begin before).
        CHECK(rfc3339_s(run.documents.front().at("ts")) >= static_cast<double>(record.t0));
        CHECK(rfc3339_s(run.documents.front().at("ts")) < static_cast<double>(record.t0) + 3);
        // Early windows have phase-one and not phase-two; later ones the reverse; none both.
        size_t last_one = 0, first_two = run.documents.size();
        bool seen_one = false;
        for (size_t i = 0; i < run.documents.size(); ++i) {
            const bool one = shows_comm(run.documents[i], "phase-one");
            const bool two = shows_comm(run.documents[i], "phase-two");
            INFO("window " << i << " at " << run.documents[i].at("ts"));
            CHECK_FALSE((one && two));
            if (one) {
                last_one = i;
                seen_one = true;
            }
            if (two && first_two == run.documents.size())
                first_two = i;
        }
        REQUIRE(seen_one);
        REQUIRE(first_two < run.documents.size());
        CHECK(last_one < first_two);
        // It began writing right after t0: in the first window, or the next
        // when t0 fell just before a window's end.
        CHECK((shows_comm(run.documents.front(), "phase-one") ||
               (run.documents.size() > 1 && shows_comm(run.documents[1], "phase-one"))));
        // Exact: every write call's bytes land in one refresh, every refresh
        // in one window, and nothing else writes to this filesystem.
        CHECK(sum_rows(run.documents, "comm", "phase-one", disk.path()) == record.one);
        CHECK(sum_rows(run.documents, "comm", "phase-two", disk.path()) == record.two);
        long long mount_bytes = 0;
        for (const auto &document : run.documents)
            for (const auto &mount : document.at("mounts"))
                if (mount.value("mount", "") == disk.path())
                    mount_bytes += mount.at("write_bytes").get<long long>();
        CHECK(mount_bytes == record.one + record.two);

        // -n N: the first N of them.
        const Replayed three = replay(at_t0, record.recorder, {"--json", "-n", "3"});
        REQUIRE(three.status == 0);
        REQUIRE(three.documents.size() == std::min<size_t>(3, run.documents.size()));
        for (size_t i = 0; i < three.documents.size(); ++i)
            CHECK(three.documents[i] == run.documents[i]);

        // -b without --json: the text table of the same windows.
        const Replayed text = replay(at_t0, record.recorder, {"-b", "-n", "0"}, false);
        REQUIRE(text.status == 0);
        CHECK(text.out.find("phase-one") != std::string::npos);
        CHECK(text.out.find("phase-two") != std::string::npos);
        CHECK(text.out.find("{\"") == std::string::npos);
    }

    {
        INFO("--by cgroup and --by mount: the loop mount's rows sum to both writers' bytes");
        for (const std::string by : {"cgroup", "mount"}) {
            const Replayed run = replay(at_t0, record.recorder, {"--json", "-n", "0", "--by", by});
            INFO("--by " << by << " stderr: " << run.err);
            REQUIRE(run.status == 0);
            check_documents(run.documents, by);
            long long bytes = 0;
            for (const auto &document : run.documents)
                for (const auto &row : document.at("rows"))
                    if (row.value("mount", "") == disk.path()) {
                        bytes += row.at("write_bytes").get<long long>();
                        if (by == "cgroup")
                            CHECK(row.contains("cgroup"));
                    }
            CHECK(bytes == record.one + record.two);
            if (by == "mount")  // one row per mount in each window
                for (const auto &document : run.documents) {
                    size_t rows = 0;
                    for (const auto &row : document.at("rows"))
                        rows += row.value("mount", "") == disk.path();
                    CHECK(rows <= 1);
                }
        }
    }

    {
        INFO("every form of WHEN for the same second replays the same windows");
        const Replayed unix_form = replay(at_t0, record.recorder, {"--json", "-n", "0"});
        REQUIRE(unix_form.status == 0);
        REQUIRE_FALSE(unix_form.documents.empty());
        for (const std::string when :
             {local_time(record.t0, "%Y-%m-%dT%H:%M:%SZ", true), local_time(record.t0, "%Y-%m-%d %H:%M:%S", false),
              local_time(record.t0, "%H:%M:%S", false)}) {
            // "HH:MM:SS" means today: not the same second if the record was made before midnight.
            if (when.size() == 8 && local_time(record.t0, "%F", false) != local_time(static_cast<long long>(wall_now_s()), "%F", false))
                continue;
            const Replayed run = replay(when, record.recorder, {"--json", "-n", "0"});
            INFO("--replay \"" << when << "\": " << run.err);
            CHECK(run.status == 0);
            CHECK(run.out == unix_form.out);
        }
    }

    {
        INFO("a time before the record starts at its first window, a time after it at its last");
        const Replayed from_t0 = replay(at_t0, record.recorder, {"--json", "-n", "0"});
        REQUIRE(from_t0.status == 0);
        const Replayed before = replay("@" + std::to_string(record.t0 - 600), record.recorder, {"--json", "-n", "0"});
        INFO("before: " << before.err);
        REQUIRE(before.status == 0);
        check_documents(before.documents, "process");
        // All of it: the windows from t0 on are its tail, and it begins earlier
        // (the agent recorded idle windows for 2 s before t0).
        REQUIRE(before.documents.size() > from_t0.documents.size());
        CHECK(rfc3339_s(before.documents.front().at("ts")) < static_cast<double>(record.t0));
        for (size_t i = 0; i < from_t0.documents.size(); ++i)
            CHECK(before.documents[before.documents.size() - from_t0.documents.size() + i] == from_t0.documents[i]);
        // "5m ago" (relative) is before the record too: the same windows.
        const Replayed relative = replay("5m ago", record.recorder, {"--json", "-n", "0"});
        CHECK(relative.status == 0);
        CHECK(relative.out == before.out);

        // (A time in the future is refused: exit 2, below.)
        for (const std::string when : {std::string("now"), "@" + std::to_string(static_cast<long long>(record.t_end) + 1)}) {
            const Replayed after = replay(when, record.recorder, {"--json", "-n", "0"});
            INFO("--replay " << when << ": " << after.err);
            REQUIRE(after.status == 0);
            REQUIRE(after.documents.size() == 1);
            CHECK(after.documents.front() == before.documents.back());
        }
    }

    {
        INFO("a time that is not one: exit 2 with one line that says so; a missing record: exit 1 naming it");
        for (const std::string when : {"garbage o'clock", "@soon", "25:99", "2026-13-45 10:00"}) {
            const Replayed run = replay(when, record.recorder, {"--json", "-n", "0"}, false);
            INFO("--replay \"" << when << "\": " << run.err);
            CHECK(run.status == 2);
            CHECK(run.out.empty());
            CHECK(run.err.find("--replay") != std::string::npos);
            CHECK(run.err.find('\n') == run.err.size() - 1);  // one line
        }
        const std::string missing = record.dir.path() + "/no-such-record";
        const Replayed run = replay(at_t0, missing, {"--json", "-n", "0"}, false);
        INFO(run.err);
        CHECK(run.status == 1);
        CHECK(run.out.empty());
        CHECK(run.err.find(missing) != std::string::npos);
    }
}

// A time long before the record starts at its first window, long after it at
// its last (the feed reads [WHEN - 1 h, WHEN + 24 h], then moves WHEN into
// the record). An empty WHEN is a usage error, not a live top.
TEST_CASE("top --replay: a day before the record starts at its first window, now at its last, the future is refused",
          "[top][replay][recorder][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(64);
    Recorded record;
    record_two_phases(disk, record);
    const Replayed all = replay("@" + std::to_string(record.t0 - 600), record.recorder, {"--json", "-n", "0"});
    REQUIRE(all.status == 0);
    REQUIRE_FALSE(all.documents.empty());
    const Replayed long_before = replay("@" + std::to_string(record.t0 - 2 * 86400), record.recorder, {"--json", "-n", "1"});
    INFO("two days before: " << long_before.err);
    CHECK(long_before.status == 0);
    if (!long_before.documents.empty())
        CHECK(long_before.documents.front() == all.documents.front());
    // Hours after the record cannot be had here without waiting hours (a time
    // in the future is refused): "now" is after it, and so is its last window.
    const Replayed long_after = replay("now", record.recorder, {"--json", "-n", "0"});
    INFO("now, after the record: " << long_after.err);
    CHECK(long_after.status == 0);
    if (!long_after.documents.empty())
        CHECK(long_after.documents.front() == all.documents.back());
    const Replayed future = replay("@" + std::to_string(static_cast<long long>(record.t_end) + 7200), record.recorder,
                                   {"--json", "-n", "0"}, false);
    INFO("two hours from now: " << future.err);
    CHECK(future.status == 2);
    CHECK(future.err.find("in the future") != std::string::npos);
    // An empty WHEN is not a time either.
    const Replayed empty = replay("", record.recorder, {"--json", "-n", "1", "-d", "0.5"}, false);
    INFO("--replay \"\": " << empty.err);
    CHECK(empty.status == 2);
}

namespace {

// The header's "(k/N, " of the replay, as {k, N}; {0, 0} when not shown.
std::pair<int, int> position(const std::string &screen)
{
    static const std::regex pattern(R"(replay \S+ \((\d+)/(\d+), )");
    std::smatch match;
    if (!std::regex_search(screen, match, pattern))
        return {0, 0};
    return {std::stoi(match[1]), std::stoi(match[2])};
}

bool screen_until(const TmuxSession &tmux, const std::function<bool(const std::string &)> &check,
                  std::chrono::seconds timeout = std::chrono::seconds(10))
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (check(tmux.screen()))
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
}

// Types `key` and waits until the header says window `k` (1-based).
bool step_to(const TmuxSession &tmux, const std::string &key, int k)
{
    tmux.keys(key);
    return screen_until(tmux, [k](const std::string &s) { return position(s).first == k; });
}

}  // namespace

TEST_CASE("top --replay in tmux: the header's position, steps of one and ten windows (clamped), space plays, "
          "m regroups, t is refused, q restores the terminal",
          "[top][replay][recorder][interactive][bpf]")
{
    if (!bpf_tests_can_run() || !tmux_can_run())
        return;
    LoopMount disk(256);
    Recorded record;
    record_two_phases(disk, record);
    const std::string when = "@" + std::to_string(record.t0 - 600);  // before the record: its first window
    // What each window holds, from the batch replay of the same WHEN.
    const Replayed batch = replay(when, record.recorder, {"--json", "-n", "0"});
    REQUIRE(batch.status == 0);
    const int windows = static_cast<int>(batch.documents.size());
    REQUIRE(windows > 10);  // enough for { } to move by ten
    int first_two = 0, last_one = 0;  // 1-based
    for (int k = 1; k <= windows; ++k) {
        if (shows_comm(batch.documents[k - 1], "phase-one"))
            last_one = k;
        if (!first_two && shows_comm(batch.documents[k - 1], "phase-two"))
            first_two = k;
    }
    REQUIRE(last_one > 1);
    REQUIRE(first_two > last_one);

    // `; echo` and the stty test show how top left the terminal; `sleep` keeps the pane.
    TmuxSession tmux(std::string(DW_BINARY) + " top -d 1 --replay " + when + " --recorder " + record.recorder +
                     "; echo top-exited-$?; if stty -a | grep -Eq '(^| )icanon( |$)' && "
                     "stty -a | grep -Eq '(^| )echo( |$)'; then echo tty-restored; fi; sleep 60");
    const auto at = [&] { return position(tmux.screen()); };
    REQUIRE(screen_until(tmux, [](const std::string &s) { return s.find("paused: [ ] step, space plays") != std::string::npos; },
                         std::chrono::seconds(30)));
    INFO(tmux.screen());
    CHECK(at() == std::pair<int, int>(1, windows));
    CHECK(tmux.screen().find("1s windows") != std::string::npos);
    CHECK(tmux.screen().find("phase-two") == std::string::npos);

    // ] one forward (Right too), until phase-two's first window; it shows phase-two, not phase-one.
    REQUIRE(step_to(tmux, "]", 2));
    REQUIRE(step_to(tmux, "Right", 3));
    for (int k = 4; k <= first_two; ++k)
        REQUIRE(step_to(tmux, "]", k));
    CHECK(tmux.wait_for("phase-two", std::chrono::seconds(5)));
    CHECK(tmux.screen().find("phase-one") == std::string::npos);
    // [ back (Left too) to phase-one's last window.
    for (int k = first_two - 1; k >= last_one; --k)
        REQUIRE(step_to(tmux, k % 2 ? "[" : "Left", k));
    CHECK(tmux.wait_for("phase-one", std::chrono::seconds(5)));
    CHECK(tmux.screen().find("phase-two") == std::string::npos);

    // { and } by ten, clamped at both ends; past the end, the view says so.
    REQUIRE(step_to(tmux, "{", std::max(1, last_one - 10)));
    REQUIRE(step_to(tmux, "{", 1));
    REQUIRE(step_to(tmux, "}", 11));
    REQUIRE(step_to(tmux, "}", std::min(windows, 21)));
    REQUIRE(step_to(tmux, "}", windows));
    tmux.keys("}");
    CHECK(tmux.wait_for("the end of the replayed record", std::chrono::seconds(5)));
    CHECK(at().first == windows);
    while (at().first > 1) {
        const int from = at().first;
        REQUIRE(step_to(tmux, "{", std::max(1, from - 10)));
    }

    // space plays: the position moves on by itself (one window a second), and pauses again.
    REQUIRE(at().first == 1);
    tmux.keys("Space");
    CHECK(tmux.wait_for("playing", std::chrono::seconds(5)));
    CHECK(screen_until(tmux, [](const std::string &s) { return position(s).first >= 3; }, std::chrono::seconds(15)));
    tmux.keys("Space");
    CHECK(tmux.wait_for("paused: [ ] step", std::chrono::seconds(5)));
    const int paused_at = at().first;
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // more than two refreshes: it stays
    CHECK(at().first == paused_at);

    // m: by mount, still replaying the same window.
    tmux.keys("m");
    CHECK(tmux.wait_for("by mount", std::chrono::seconds(5)));
    CHECK(at().first == paused_at);
    CHECK(tmux.screen().find("replay ") != std::string::npos);

    // t: a replay cannot act: refused with a message, no throttle prompt.
    tmux.keys("t");
    CHECK(screen_until(tmux, [](const std::string &s) {
        return s.find("acting needs") != std::string::npos || s.find("nothing to act on") != std::string::npos;
    }, std::chrono::seconds(5)));
    CHECK(tmux.screen().find("Enter throttles") == std::string::npos);
    CHECK(at().first == paused_at);

    tmux.keys("q");
    CHECK(tmux.wait_for("top-exited-0", std::chrono::seconds(10)));
    CHECK(tmux.wait_for("tty-restored", std::chrono::seconds(5)));
    std::string alternate;
    run({kTmux, "-S", tmux.socket, "display-message", "-p", "-t", tmux.name, "#{alternate_on}"}, &alternate);
    CHECK(alternate.find('0') == 0);  // back on the normal screen
}
