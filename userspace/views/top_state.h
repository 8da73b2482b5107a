// What the interactive view shows, apart from how it is drawn and from the
// data (Netflix/bpftop keeps the same split): keys change this state only.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "aggregate/container_groups.h"
#include "aggregate/write_report.h"

namespace diskwatch {

// In the order `s` steps through them. full_in: the row's mount's time to
// full, soonest first (rows on a mount that is not filling last).
enum class SortKey { write_rate, total, growth, full_in, pid, name };
inline constexpr int kSortKeys = 6;

// What the status line says after a prompt is cancelled.
inline constexpr const char *kCancelled = "cancelled";

// An action on the selected row, waiting on the status line for the
// operator's confirmation (top attached to an agent; docs/cli.md).
struct PendingAction {
    std::string action;  // throttle | kill | release | protect
    std::string target;  // a pid or a cgroup path, as the agent's `act` takes it
    std::string label;   // what the prompt names: "pid 1234 (dw-marked)"
    bool typed = false;  // a value is typed (throttle's rate, release's snooze); else y or n
    std::string input;   // typed so far
};

struct TopViewState {
    GroupBy by = GroupBy::process;
    // By container or Compose service: the cgroup rows (`by` is cgroup)
    // merged by what the runtime calls them (aggregate/container_groups.h).
    std::optional<ContainerGrouping> containers;
    // `T`: the cgroup rows as a tree with subtree totals (views/cgroup_tree.h).
    bool tree = false;
    SortKey sort = SortKey::write_rate;
    bool reversed = false;  // `r` (htop's `I`): the sort's other end first
    bool accumulated = false;  // show totals since start, and idle rows that have one
    bool show_help = false;
    bool quit = false;
    // `/` filter, like htop: rows whose name (comm, exe, cgroup, unit,
    // container, mount) or pid contains it, case-insensitively.
    std::string filter;
    bool editing_filter = false;  // typing after `/`: keys go to the filter
    bool all_mounts = false;      // --all-mounts (fixed for the session)
    // The selected row, like htop's bar: it follows its row (by identity,
    // `row_identity`) when a refresh re-sorts, and the list scrolls to keep
    // it in sight. Keys move `selected`; drawing resolves it against the rows
    // (select_row) and keeps `selected_identity` and `first_shown` up to date.
    // Until the operator moves it (arrows, pages, End, a click), the bar stays on
    // the first row, as htop's does: a top writer that slows or exits must not
    // scroll the list away from the top. Home puts it back there.
    size_t selected = 0;
    bool selection_follows = false;  // moved by the operator: it follows its row
    std::string selected_identity;
    bool selection_lost = false;  // its row is not in the list now: no bar, nothing to act on
    size_t first_shown = 0;  // the first row on screen (scrolled past the rest)
    size_t page_rows = 10;   // rows the last drawing had room for: PgUp/PgDn move this far
    // Acting on the selected row: t throttle, k kill, u release, P protect.
    bool can_act = false;           // attached to an agent (only an agent acts)
    std::string selected_target;    // the selected row's pid or cgroup path; empty: not actionable
    std::string selected_label;     // and how a prompt names it
    std::optional<PendingAction> pending;
    std::string message;  // the last action's outcome, on the status line until the next key
    // top --replay: [ and ] (or left and right) step one recorded window,
    // { and } ten; space plays them at the refresh rate, or pauses.
    bool replay = false;
    int replay_step = 0;  // asked by the last key, for the loop to take
    bool replay_playing = false;
};

// ncurses' codes for the keys the filter editor needs (this file stays free
// of curses: the state is tested without a terminal).
inline constexpr int kKeyBackspace = 0407;  // KEY_BACKSPACE
inline constexpr int kKeyLeft = 0404;       // KEY_LEFT (a replay's step back)
inline constexpr int kKeyRight = 0405;      // KEY_RIGHT
inline constexpr int kKeyEnter = 0527;      // KEY_ENTER
inline constexpr int kKeyEscape = 27;
inline constexpr int kKeyDown = 0402;   // KEY_DOWN
inline constexpr int kKeyUp = 0403;     // KEY_UP
inline constexpr int kKeyHome = 0406;   // KEY_HOME
inline constexpr int kKeyNextPage = 0522;  // KEY_NPAGE
inline constexpr int kKeyPrevPage = 0523;  // KEY_PPAGE
inline constexpr int kKeyEnd = 0550;    // KEY_END

// act: the pending action is confirmed; the view sends it and says the outcome.
enum class KeyEffect { none, redraw, regroup, act, step };

// Applies one key press: q or Esc quit; s next sort, r (or I) reverse it; p/c/o/v/m group by
// process/cgroup/container/Compose service/mount; g next grouping; a toggle accumulated totals; h or ? help; / edit
// the filter (Enter keeps it, Esc clears it, Backspace deletes); \ clears it.
KeyEffect apply_key(TopViewState &state, int key);

std::string_view to_string(SortKey sort);

// The grouping the view shows: "process", "cgroup", "cgroup tree", "container", "service" or "mount".
std::string_view grouping_name(const TopViewState &state);
// Whether the rows are drawn as the cgroup tree.
bool showing_tree(const TopViewState &state);

// Whether a row passes the state's filter (an empty filter passes all).
bool row_matches_filter(const ReportRow &row, std::string_view filter);

// How urgent a mount's time to full is, for its colour: under an hour is
// `now` (red), under a day `today` (yellow); never filling or later: `calm`.
enum class FullInUrgency { calm, today, now };
FullInUrgency full_in_urgency(const std::optional<double> &eta_full_s);

// The mounts in the order the live view lists them, the most urgent first
// (a short terminal shows those): filling, soonest full first; then by
// write rate; then as the report lists them.
std::vector<MountReport> mounts_by_urgency(const std::vector<MountReport> &mounts);

// What stays the same for a row from one refresh to the next in the
// state's grouping (the pid, cgroup or container, and the device).
std::string row_identity(const ReportRow &row, const TopViewState &state);

// Resolves the selection against the rows about to be drawn (sorted and
// filtered; row i takes heights[i] screen lines, `lines` are free for them):
// the selected row keeps its identity when it is still there (a re-sort moves
// the bar with it), otherwise the index is kept within the rows; then the
// list scrolls (first_shown) so that the whole selected row is in sight, and
// page_rows counts the rows shown. Returns the selected index (0, and no
// selection, when there are no rows).
size_t select_row(TopViewState &state, const std::vector<ReportRow> &rows, const std::vector<size_t> &heights,
                  size_t lines);

// Sets selected_target and selected_label from the selected row (a pid in
// the process grouping, its cgroup in the cgroup and container groupings;
// a mount row is not acted on).
void describe_selection(TopViewState &state, const ReportRow *selected);

// The status line's prompt for the pending action (empty when none); the
// row's name in it at most kPromptLabelWidth columns.
inline constexpr size_t kPromptLabelWidth = 48;
std::string pending_prompt(const PendingAction &pending);

// The order the state's sort (and `r`) puts rows in: a strict weak order,
// ties by write rate then total. `mounts` gives each row's time to full.
std::function<bool(const ReportRow &, const ReportRow &)> row_order(const TopViewState &state,
                                                                    const std::vector<MountReport> &mounts);

// The rows in the order the state asks for, filtered. `mounts` gives each
// row's time to full (its mount's, matched by device) for SortKey::full_in.
std::vector<ReportRow> sorted_rows(const std::vector<ReportRow> &rows, const TopViewState &state,
                                   const std::vector<MountReport> &mounts = {});

}  // namespace diskwatch
