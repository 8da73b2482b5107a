#include <catch2/catch.hpp>

#include <utility>

#include "views/top_state.h"

using namespace diskwatch;

TEST_CASE("keys change the live view's state", "[top]")
{
    TopViewState state;
    CHECK(apply_key(state, 'c') == KeyEffect::regroup);
    CHECK(state.by == GroupBy::cgroup);
    CHECK(apply_key(state, 'g') == KeyEffect::regroup);
    CHECK(state.by == GroupBy::mount);
    CHECK(apply_key(state, 's') == KeyEffect::redraw);
    CHECK(state.sort == SortKey::total);
    CHECK(apply_key(state, 'a') == KeyEffect::regroup);
    CHECK(state.accumulated);
    CHECK(apply_key(state, '?') == KeyEffect::redraw);
    CHECK(state.show_help);
    CHECK(apply_key(state, 'x') == KeyEffect::redraw);  // any key leaves help
    CHECK_FALSE(state.show_help);
    CHECK(apply_key(state, 'z') == KeyEffect::none);
    apply_key(state, 'q');
    CHECK(state.quit);
    TopViewState escaped;
    apply_key(escaped, kKeyEscape);  // Esc quits too (it clears the filter while one is typed)
    CHECK(escaped.quit);
}

TEST_CASE("o and v group the live view by container and by Compose service, and g steps through all five", "[top]")
{
    TopViewState state;
    CHECK(apply_key(state, 'o') == KeyEffect::regroup);
    CHECK(state.by == GroupBy::cgroup);  // the rows the containers' are merged from
    CHECK(state.containers == ContainerGrouping::container);
    CHECK(grouping_name(state) == "container");
    CHECK(apply_key(state, 'v') == KeyEffect::regroup);
    CHECK(state.containers == ContainerGrouping::service);
    CHECK(grouping_name(state) == "service");
    CHECK(apply_key(state, 'p') == KeyEffect::regroup);
    CHECK_FALSE(state.containers);
    CHECK(grouping_name(state) == "process");

    std::vector<std::string> cycle;
    for (int i = 0; i < 6; ++i) {
        apply_key(state, 'g');
        cycle.emplace_back(grouping_name(state));
    }
    CHECK(cycle == std::vector<std::string>{"cgroup", "mount", "container", "service", "process", "cgroup"});
    apply_key(state, 'o');
    apply_key(state, 'm');
    CHECK(state.by == GroupBy::mount);
    CHECK_FALSE(state.containers);
}

TEST_CASE("rows sort by growth and by their mount's time to full, and r reverses any sort", "[top]")
{
    std::vector<ReportRow> rows(3);
    rows[0].pid = 1, rows[0].dev = "8:1", rows[0].write_bps = 30, rows[0].growth_bps = 0;
    rows[1].pid = 2, rows[1].dev = "8:2", rows[1].write_bps = 20, rows[1].growth_bps = 50;
    rows[2].pid = 3, rows[2].dev = "8:3", rows[2].write_bps = 10, rows[2].growth_bps = 5;
    std::vector<MountReport> mounts(3);
    mounts[0].dev = "8:1";  // not filling
    mounts[1].dev = "8:2", mounts[1].eta_full_s = 7200;
    mounts[2].dev = "8:3", mounts[2].eta_full_s = 60;
    auto pids = [&](const TopViewState &state) {
        std::vector<uint32_t> order;
        for (const auto &row : sorted_rows(rows, state, mounts))
            order.push_back(row.pid);
        return order;
    };
    TopViewState state;
    CHECK(pids(state) == std::vector<uint32_t>{1, 2, 3});
    state.sort = SortKey::growth;
    CHECK(pids(state) == std::vector<uint32_t>{2, 3, 1});
    state.sort = SortKey::full_in;
    CHECK(pids(state) == std::vector<uint32_t>{3, 2, 1});  // soonest full first, never-full last
    CHECK(apply_key(state, 'r') == KeyEffect::redraw);
    CHECK(state.reversed);
    CHECK(pids(state) == std::vector<uint32_t>{1, 2, 3});
    apply_key(state, 'I');  // htop's key
    CHECK_FALSE(state.reversed);
    // s steps through all six and comes back.
    std::vector<std::string> names;
    for (int i = 0; i < kSortKeys; ++i) {
        apply_key(state, 's');
        names.emplace_back(to_string(state.sort));
    }
    CHECK(names == std::vector<std::string>{"pid", "name", "write rate", "total", "growth", "full in"});
}

TEST_CASE("time to full is coloured by urgency: under an hour, under a day, later or never", "[top]")
{
    CHECK(full_in_urgency(std::nullopt) == FullInUrgency::calm);
    CHECK(full_in_urgency(59.0) == FullInUrgency::now);
    CHECK(full_in_urgency(3599.0) == FullInUrgency::now);
    CHECK(full_in_urgency(3600.0) == FullInUrgency::today);
    CHECK(full_in_urgency(86399.0) == FullInUrgency::today);
    CHECK(full_in_urgency(86400.0) == FullInUrgency::calm);
}

TEST_CASE("rows sort by the chosen key", "[top]")
{
    std::vector<ReportRow> rows(3);
    rows[0].pid = 3, rows[0].comm = "b", rows[0].write_bps = 10, rows[0].total_bytes = 100;
    rows[1].pid = 1, rows[1].comm = "c", rows[1].write_bps = 30, rows[1].total_bytes = 50;
    rows[2].pid = 2, rows[2].comm = "a", rows[2].write_bps = 20, rows[2].total_bytes = 500;
    TopViewState state;
    CHECK(sorted_rows(rows, state)[0].pid == 1);
    state.sort = SortKey::total;
    CHECK(sorted_rows(rows, state)[0].pid == 2);
    state.sort = SortKey::pid;
    CHECK(sorted_rows(rows, state)[0].pid == 1);
    state.sort = SortKey::name;
    CHECK(sorted_rows(rows, state)[0].comm == "a");
}

TEST_CASE("/ edits a filter like htop's: typed keys go to it, Enter keeps, Esc clears", "[top][filter]")
{
    TopViewState state;
    CHECK(apply_key(state, '/') == KeyEffect::redraw);
    CHECK(state.editing_filter);
    for (char c : std::string("Sqlq"))
        apply_key(state, c);
    CHECK(state.filter == "Sqlq");
    CHECK_FALSE(state.quit);  // q while typing is a letter, not quit
    apply_key(state, kKeyBackspace);
    CHECK(state.filter == "Sql");
    apply_key(state, 0x1b + 0x100);  // a key code that is not a character: ignored
    apply_key(state, 0x07);          // a control character: never into the filter
    CHECK(state.filter == "Sql");
    apply_key(state, '\n');
    CHECK_FALSE(state.editing_filter);
    CHECK(state.filter == "Sql");
    apply_key(state, 's');  // keys are commands again
    CHECK(state.sort == SortKey::total);
    apply_key(state, '\\');
    CHECK(state.filter.empty());
    apply_key(state, '/');
    apply_key(state, 'x');
    apply_key(state, kKeyEscape);
    CHECK_FALSE(state.editing_filter);
    CHECK(state.filter.empty());
}

TEST_CASE("the filter matches comm, exe, cgroup, unit, mount or pid, case-insensitively", "[top][filter]")
{
    std::vector<ReportRow> rows(4);
    rows[0].pid = 100, rows[0].comm = "postgres", rows[0].mount = "/var/lib/pg";
    rows[1].pid = 200, rows[1].comm = "java", rows[1].cgroup = "/system.slice/Kafka.service", rows[1].unit = "Kafka.service";
    rows[2].pid = 3100, rows[2].comm = std::string("evil\x1b[2J", 8), rows[2].exe = "/tmp/x";
    rows[3].pid = 400, rows[3].comm = "dd", rows[3].mount = "/data";
    TopViewState state;
    state.filter = "KAFKA";
    auto shown = sorted_rows(rows, state);
    REQUIRE(shown.size() == 1);
    CHECK(shown[0].pid == 200);
    state.filter = "100";  // pid 100 and pid 3100
    CHECK(sorted_rows(rows, state).size() == 2);
    state.filter = "/data";
    REQUIRE(sorted_rows(rows, state).size() == 1);
    state.filter = "nothing-like-it";
    CHECK(sorted_rows(rows, state).empty());
    state.filter.clear();
    CHECK(sorted_rows(rows, state).size() == 4);
    CHECK(row_matches_filter(rows[2], "evil"));
}

TEST_CASE("the live view lists the mounts filling soonest first, then the busiest", "[top]")
{
    std::vector<MountReport> mounts(4);
    mounts[0].mount = "/idle";
    mounts[1].mount = "/busy";
    mounts[1].write_bps = 100;
    mounts[2].mount = "/in-an-hour";
    mounts[2].eta_full_s = 3600;
    mounts[3].mount = "/in-a-minute";
    mounts[3].eta_full_s = 60;
    const auto sorted = mounts_by_urgency(mounts);
    REQUIRE(sorted.size() == 4);
    CHECK(sorted[0].mount == "/in-a-minute");
    CHECK(sorted[1].mount == "/in-an-hour");
    CHECK(sorted[2].mount == "/busy");
    CHECK(sorted[3].mount == "/idle");
}

namespace {
// Rows of pids 100, 101, ... on one mount: the selection tests' list.
std::vector<ReportRow> numbered_rows(size_t count)
{
    std::vector<ReportRow> rows(count);
    for (size_t i = 0; i < rows.size(); ++i) {
        rows[i].pid = static_cast<uint32_t>(100 + i);
        rows[i].dev = "8:1";
    }
    return rows;
}
}  // namespace

TEST_CASE("the selection moves with the arrows and pages, follows its row through a re-sort, and scrolls into sight",
          "[top][select]")
{
    const std::vector<ReportRow> rows = numbered_rows(10);
    const std::vector<size_t> heights(rows.size(), 1);
    TopViewState state;
    CHECK(select_row(state, rows, heights, 4) == 0);
    CHECK(state.page_rows == 4);
    CHECK(apply_key(state, kKeyDown) == KeyEffect::redraw);
    apply_key(state, kKeyDown);
    CHECK(select_row(state, rows, heights, 4) == 2);
    CHECK(state.first_shown == 0);
    apply_key(state, kKeyNextPage);  // a page is what the last drawing showed
    CHECK(select_row(state, rows, heights, 4) == 6);
    CHECK(state.first_shown == 3);  // scrolled: rows 3..6 in sight, the selection last
    apply_key(state, kKeyEnd);
    CHECK(select_row(state, rows, heights, 4) == 9);
    CHECK(state.first_shown == 6);
    apply_key(state, kKeyPrevPage);
    CHECK(select_row(state, rows, heights, 4) == 5);
    CHECK(state.first_shown == 5);  // scrolled up to it
    apply_key(state, kKeyHome);
    CHECK(select_row(state, rows, heights, 4) == 0);
    CHECK(state.first_shown == 0);
    apply_key(state, kKeyUp);  // nothing above the first
    CHECK(select_row(state, rows, heights, 4) == 0);

    // The bar stays on pid 103 when a refresh puts it elsewhere.
    apply_key(state, kKeyDown), apply_key(state, kKeyDown), apply_key(state, kKeyDown);
    REQUIRE(select_row(state, rows, heights, 4) == 3);
    std::vector<ReportRow> resorted(rows.rbegin(), rows.rend());
    const size_t at = select_row(state, resorted, heights, 4);
    CHECK(resorted[at].pid == 103);
    CHECK(at == 6);
    // Its row gone: the index stays, within the rows.
    resorted.resize(5);
    CHECK(select_row(state, resorted, std::vector<size_t>(5, 1), 4) == 4);
    CHECK(select_row(state, {}, {}, 4) == 0);

    // Rows with a file line take two lines: fewer fit, and scrolling counts them.
    TopViewState tall;
    const std::vector<size_t> doubled(rows.size(), 2);
    apply_key(tall, kKeyEnd);
    CHECK(select_row(tall, rows, doubled, 5) == 9);
    CHECK(tall.first_shown == 8);  // rows 8 and 9: four lines of five
    CHECK(tall.page_rows == 2);
}

TEST_CASE("until the operator moves the bar it stays on the first row: a top writer that slows or exits scrolls "
          "nothing away",
          "[top][select]")
{
    const std::vector<ReportRow> rows = numbered_rows(10);
    const std::vector<size_t> heights(rows.size(), 1);
    TopViewState state;
    REQUIRE(select_row(state, rows, heights, 4) == 0);
    // The top writer (pid 100) falls to the bottom of the next refresh: the bar
    // and the list stay at the top, on whichever row is first now.
    std::vector<ReportRow> resorted(rows.begin() + 1, rows.end());
    resorted.push_back(rows.front());
    CHECK(select_row(state, resorted, heights, 4) == 0);
    CHECK(state.first_shown == 0);
    CHECK_FALSE(state.selection_lost);
    describe_selection(state, &resorted[0]);
    CHECK(state.selected_target == "101");  // what a key would act on: the row under the bar

    // Moved by the operator: from then on the bar follows its row.
    apply_key(state, kKeyDown);
    REQUIRE(select_row(state, resorted, heights, 4) == 1);  // pid 102
    CHECK(select_row(state, rows, heights, 4) == 2);        // pid 102, re-sorted back
    // Home: back on the first row, and staying there.
    apply_key(state, kKeyHome);
    CHECK(select_row(state, rows, heights, 4) == 0);
    CHECK(select_row(state, resorted, heights, 4) == 0);
    CHECK(state.first_shown == 0);
}

TEST_CASE("t k u P open a confirmation for the selected row, only when attached to an agent", "[top][act]")
{
    TopViewState state;
    ReportRow row;
    row.pid = 4242;
    row.comm = "dw-flood";
    row.cgroup = "/jobs/a";
    describe_selection(state, &row);
    CHECK(state.selected_target == "4242");
    CHECK(state.selected_label == "pid 4242 (dw-flood)");

    // Not attached: said, and nothing is asked.
    CHECK(apply_key(state, 'k') == KeyEffect::redraw);
    CHECK_FALSE(state.pending);
    CHECK_THAT(state.message, Catch::Contains("attached to a running agent"));
    apply_key(state, 's');
    CHECK(state.message.empty());  // until the next key

    state.can_act = true;
    // Kill: y confirms, anything else cancels.
    CHECK(apply_key(state, 'k') == KeyEffect::redraw);
    REQUIRE(state.pending);
    CHECK(state.pending->action == "kill");
    CHECK(state.pending->target == "4242");
    CHECK_THAT(pending_prompt(*state.pending), Catch::Contains("kill pid 4242 (dw-flood)?") && Catch::Contains("[y/N]"));
    CHECK(apply_key(state, 'q') == KeyEffect::redraw);  // q here is "no", not quit
    CHECK_FALSE(state.quit);
    CHECK_FALSE(state.pending);
    CHECK(state.message == "cancelled");
    apply_key(state, 'k');
    CHECK(apply_key(state, 'y') == KeyEffect::act);

    // Throttle: a rate typed over the default, Enter confirms, Esc cancels.
    state.pending.reset();
    apply_key(state, 't');
    REQUIRE(state.pending);
    CHECK(state.pending->input == "1MiB/s");
    for (int i = 0; i < 6; ++i)
        apply_key(state, kKeyBackspace);
    for (char c : std::string("512KiB/s"))
        apply_key(state, c);
    CHECK(state.pending->input == "512KiB/s");
    CHECK_THAT(pending_prompt(*state.pending), Catch::Contains("throttle pid 4242 (dw-flood) to: 512KiB/s_"));
    CHECK(apply_key(state, '\n') == KeyEffect::act);
    state.pending.reset();
    apply_key(state, 'u');
    CHECK_THAT(pending_prompt(*state.pending), Catch::Contains("leave it alone for"));
    CHECK(apply_key(state, kKeyEscape) == KeyEffect::redraw);
    CHECK_FALSE(state.pending);
    CHECK_FALSE(state.quit);  // Esc cancels the prompt, it does not quit
    apply_key(state, 'P');
    CHECK(state.pending->action == "protect");

    // By cgroup the target is the row's cgroup; a mount row is not acted on.
    TopViewState by_cgroup;
    by_cgroup.by = GroupBy::cgroup;
    by_cgroup.can_act = true;
    describe_selection(by_cgroup, &row);
    CHECK(by_cgroup.selected_target == "/jobs/a");
    TopViewState by_mount;
    by_mount.by = GroupBy::mount;
    by_mount.can_act = true;
    describe_selection(by_mount, &row);
    apply_key(by_mount, 't');
    CHECK_FALSE(by_mount.pending);
    CHECK_THAT(by_mount.message, Catch::Contains("a mount row cannot be"));
}

TEST_CASE("with --replay the step keys (brackets, braces, left and right) move one window or ten and space plays, "
          "and without it they do nothing",
          "[top][replay]")
{
    TopViewState live;
    for (int key : {int('['), int(']'), int('{'), int('}'), kKeyLeft, kKeyRight, int(' ')})
        CHECK(apply_key(live, key) == KeyEffect::none);
    CHECK_FALSE(live.replay_playing);

    TopViewState replay;
    replay.replay = true;
    const std::pair<int, int> steps[] = {{'[', -1}, {kKeyLeft, -1}, {']', 1}, {kKeyRight, 1}, {'{', -10}, {'}', 10}};
    for (auto [key, step] : steps) {
        INFO("key " << key);
        replay.replay_playing = true;
        CHECK(apply_key(replay, key) == KeyEffect::step);
        CHECK(replay.replay_step == step);
        CHECK_FALSE(replay.replay_playing);  // a step pauses
        replay.replay_step = 0;
    }
    CHECK(apply_key(replay, ' ') == KeyEffect::redraw);
    CHECK(replay.replay_playing);
    CHECK(apply_key(replay, ' ') == KeyEffect::redraw);
    CHECK_FALSE(replay.replay_playing);
    CHECK(apply_key(replay, 'm') == KeyEffect::regroup);  // every other key as live
    CHECK(replay.by == GroupBy::mount);
}

TEST_CASE("with --replay, t k u P open nothing: the view refuses", "[top][replay][act]")
{
    for (int key : {'t', 'k', 'u', 'P'}) {
        TopViewState state;
        state.replay = true;  // as cli/top.cpp sets it: can_act is false for a replay
        state.selected_target = "1234";
        state.selected_label = "pid 1234 (phase-one)";
        apply_key(state, key);
        INFO("key " << static_cast<char>(key) << ": " << state.message);
        CHECK_FALSE(state.pending.has_value());
        CHECK_FALSE(state.message.empty());
    }
}

// The refusal says why in a replay's own words, not those of a top that
// counts on its own.
TEST_CASE("with --replay, the refusal of t says that a replay shows the past", "[top][replay][act]")
{
    TopViewState state;
    state.replay = true;
    state.selected_target = "1234";
    state.selected_label = "pid 1234 (phase-one)";
    apply_key(state, 't');
    INFO(state.message);
    CHECK(state.message.find("replay") != std::string::npos);
    CHECK(state.message.find("counts on its own") == std::string::npos);
}
