#include <catch2/catch.hpp>

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
