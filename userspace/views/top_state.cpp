#include "views/top_state.h"

#include <algorithm>

namespace diskwatch {

std::string_view to_string(SortKey sort)
{
    switch (sort) {
    case SortKey::write_rate:
        return "write rate";
    case SortKey::total:
        return "total";
    case SortKey::pid:
        return "pid";
    case SortKey::name:
        return "name";
    }
    return "";
}

KeyEffect apply_key(TopViewState &state, int key)
{
    if (state.show_help && key != -1) {
        // Any key leaves the help screen; q still quits.
        state.show_help = false;
        if (key == 'q' || key == 'Q')
            state.quit = true;
        return KeyEffect::redraw;
    }
    switch (key) {
    case 'q':
    case 'Q':
        state.quit = true;
        return KeyEffect::none;
    case 's':
        state.sort = static_cast<SortKey>((static_cast<int>(state.sort) + 1) % 4);
        return KeyEffect::redraw;
    case 'p':
        state.by = GroupBy::process;
        return KeyEffect::regroup;
    case 'c':
        state.by = GroupBy::cgroup;
        return KeyEffect::regroup;
    case 'm':
        state.by = GroupBy::mount;
        return KeyEffect::regroup;
    case 'g':
        state.by = state.by == GroupBy::process ? GroupBy::cgroup
                   : state.by == GroupBy::cgroup ? GroupBy::mount
                                                 : GroupBy::process;
        return KeyEffect::regroup;
    case 'a':
        state.accumulated = !state.accumulated;
        return KeyEffect::regroup;
    case 'h':
    case '?':
        state.show_help = true;
        return KeyEffect::redraw;
    default:
        return KeyEffect::none;
    }
}

std::vector<ReportRow> sorted_rows(const std::vector<ReportRow> &rows, const TopViewState &state)
{
    std::vector<ReportRow> sorted = rows;
    auto by_rate = [](const ReportRow &a, const ReportRow &b) {
        return a.write_bps != b.write_bps ? a.write_bps > b.write_bps : a.total_bytes > b.total_bytes;
    };
    switch (state.sort) {
    case SortKey::write_rate:
        std::stable_sort(sorted.begin(), sorted.end(), by_rate);
        break;
    case SortKey::total:
        std::stable_sort(sorted.begin(), sorted.end(),
                         [](const ReportRow &a, const ReportRow &b) { return a.total_bytes > b.total_bytes; });
        break;
    case SortKey::pid:
        std::stable_sort(sorted.begin(), sorted.end(), [](const ReportRow &a, const ReportRow &b) { return a.pid < b.pid; });
        break;
    case SortKey::name:
        std::stable_sort(sorted.begin(), sorted.end(), [](const ReportRow &a, const ReportRow &b) { return a.comm < b.comm; });
        break;
    }
    return sorted;
}

}  // namespace diskwatch
