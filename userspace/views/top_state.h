// What the interactive view shows, apart from how it is drawn and from the
// data (Netflix/bpftop keeps the same split): keys change this state only.
#pragma once

#include <string>
#include <vector>

#include "aggregate/write_report.h"

namespace diskwatch {

enum class SortKey { write_rate, total, pid, name };

struct TopViewState {
    GroupBy by = GroupBy::process;
    SortKey sort = SortKey::write_rate;
    bool accumulated = false;  // show totals since start, and idle rows that have one
    bool show_help = false;
    bool quit = false;
};

enum class KeyEffect { none, redraw, regroup };

// Applies one key press: q quit; s next sort; p/c/m group by process/cgroup/
// mount; g next grouping; a toggle accumulated totals; h or ? help.
KeyEffect apply_key(TopViewState &state, int key);

std::string_view to_string(SortKey sort);

// The rows in the order the state asks for.
std::vector<ReportRow> sorted_rows(const std::vector<ReportRow> &rows, const TopViewState &state);

}  // namespace diskwatch
