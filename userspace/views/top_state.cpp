#include "views/top_state.h"

#include "aggregate/snapshot_delta.h"
#include "views/screen_fit.h"

#include <algorithm>
#include <limits>

namespace diskwatch {

std::string_view to_string(SortKey sort)
{
    switch (sort) {
    case SortKey::write_rate:
        return "write rate";
    case SortKey::total:
        return "total";
    case SortKey::growth:
        return "growth";
    case SortKey::full_in:
        return "full in";
    case SortKey::pid:
        return "pid";
    case SortKey::name:
        return "name";
    }
    return "";
}

std::string_view grouping_name(const TopViewState &state)
{
    if (showing_tree(state))
        return "cgroup tree";
    return state.containers ? to_string(*state.containers) : to_string(state.by);
}

bool showing_tree(const TopViewState &state)
{
    return state.tree && state.by == GroupBy::cgroup && !state.containers;
}

namespace {

// The groupings in the order `g` steps through them: the feed's three, then
// the container ones merged from its cgroup rows.
void next_grouping(TopViewState &state)
{
    if (state.containers == ContainerGrouping::container) {
        state.containers = ContainerGrouping::service;
    } else if (state.containers == ContainerGrouping::service) {
        state.containers.reset();
        state.by = GroupBy::process;
    } else if (state.by == GroupBy::process) {
        state.by = GroupBy::cgroup;
    } else if (state.by == GroupBy::cgroup) {
        state.by = GroupBy::mount;
    } else {
        state.by = GroupBy::cgroup;
        state.containers = ContainerGrouping::container;
    }
}

void group_by(TopViewState &state, GroupBy by, std::optional<ContainerGrouping> containers = std::nullopt)
{
    state.by = by;
    state.containers = containers;
    state.tree = false;
    state.selected_identity.clear();  // another grouping's rows: the bar goes back to the first
    state.selection_follows = false;
}

// Moves the bar; select_row keeps it within the rows at the next drawing
// (End goes past the last and is brought back to it there).
void move_selection(TopViewState &state, int key)
{
    const size_t page = std::max<size_t>(state.page_rows, 1);
    switch (key) {
    case kKeyDown:
        ++state.selected;
        break;
    case kKeyUp:
        state.selected -= state.selected > 0 ? 1 : 0;
        break;
    case kKeyNextPage:
        state.selected += page;
        break;
    case kKeyPrevPage:
        state.selected -= std::min(state.selected, page);
        break;
    case kKeyHome:
        state.selected = 0;
        break;
    case kKeyEnd:
        state.selected = std::numeric_limits<size_t>::max();
        break;
    default:
        return;
    }
    state.selected_identity.clear();  // the index moved: the bar goes to whatever row is there
    state.selection_follows = key != kKeyHome;
}

// One line of typed text (the filter, a prompt's value): Enter ends it,
// Backspace deletes, printable ASCII up to `max` bytes is added (what is
// typed is drawn back on the screen).
enum class LineEdit { enter, changed, ignored };
LineEdit edit_line(std::string &line, int key, size_t max)
{
    switch (key) {
    case '\n':
    case '\r':
    case kKeyEnter:
        return LineEdit::enter;
    case kKeyBackspace:
    case 127:
    case 8:
        if (!line.empty())
            line.pop_back();
        return LineEdit::changed;
    default:
        if (key >= 0x20 && key < 0x7f && line.size() < max) {
            line += static_cast<char>(key);
            return LineEdit::changed;
        }
        return LineEdit::ignored;
    }
}

// Another filter: other rows; the bar starts on the first (as htop's does).
void select_first(TopViewState &state)
{
    state.selected = 0;
    state.selected_identity.clear();
    state.selection_follows = false;
}

// t, k, u, P: the prompt for the selected row, or why there is none.
KeyEffect open_action(TopViewState &state, const std::string &action)
{
    if (state.replay) {
        state.message = "a replay shows the past: nothing to act on";
        return KeyEffect::redraw;
    }
    if (!state.can_act) {
        state.message = "acting needs top attached to a running agent (its control socket): this top counts on its own";
        return KeyEffect::redraw;
    }
    if (state.selection_lost) {
        state.message = "the selected row is not listed now (idle in this refresh? a shows idle rows): select a row";
        return KeyEffect::redraw;
    }
    if (state.selected_target.empty()) {
        state.message = "select a process or cgroup row to act on (a mount row cannot be)";
        return KeyEffect::redraw;
    }
    PendingAction pending;
    pending.action = action;
    pending.target = state.selected_target;
    pending.label = state.selected_label;
    pending.typed = action == "throttle" || action == "release";
    if (action == "throttle")
        pending.input = "1MiB/s";
    state.pending = pending;
    return KeyEffect::redraw;
}

KeyEffect edit_pending(TopViewState &state, int key)
{
    PendingAction &pending = *state.pending;
    if (key == kKeyEscape) {
        state.pending.reset();
        state.message = kCancelled;
        return KeyEffect::redraw;
    }
    if (!pending.typed) {
        if (key == 'y' || key == 'Y')
            return KeyEffect::act;
        state.pending.reset();
        state.message = kCancelled;
        return KeyEffect::redraw;
    }
    switch (edit_line(pending.input, key, 32)) {
    case LineEdit::enter:
        return KeyEffect::act;
    case LineEdit::changed:
        return KeyEffect::redraw;
    default:
        return KeyEffect::none;
    }
}

KeyEffect edit_filter(TopViewState &state, int key)
{
    if (key == kKeyEscape) {
        state.editing_filter = false;
        state.filter.clear();
        select_first(state);
        return KeyEffect::redraw;
    }
    switch (edit_line(state.filter, key, 64)) {
    case LineEdit::enter:
        state.editing_filter = false;
        select_first(state);
        return KeyEffect::redraw;
    case LineEdit::changed:
        return KeyEffect::redraw;
    default:
        return KeyEffect::none;
    }
}

bool contains_folded(std::string_view text, std::string_view needle)
{
    auto fold = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return std::search(text.begin(), text.end(), needle.begin(), needle.end(),
                       [&](char a, char b) { return fold(a) == fold(b); }) != text.end();
}

}  // namespace

bool row_matches_filter(const ReportRow &row, std::string_view filter)
{
    if (filter.empty())
        return true;
    for (const std::string *name : {&row.comm, &row.exe, &row.cgroup, &row.unit, &row.container_name,
                                    &row.compose_project, &row.compose_service, &row.container_image, &row.mount})
        if (contains_folded(*name, filter))
            return true;
    return contains_folded(std::to_string(row.pid), filter);
}

KeyEffect apply_key(TopViewState &state, int key)
{
    // Esc cancels a prompt; a second Esc right after (curses' escape delay
    // makes a double press likely) clears the message rather than quitting.
    if (key == kKeyEscape && !state.pending && state.message == kCancelled) {
        state.message.clear();
        return KeyEffect::redraw;
    }
    if (key != -1)
        state.message.clear();  // said until the next key
    if (state.pending)
        return edit_pending(state, key);
    if (state.editing_filter)
        return edit_filter(state, key);
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
    case kKeyEscape:
        state.quit = true;
        return KeyEffect::none;
    case 's':
        state.sort = static_cast<SortKey>((static_cast<int>(state.sort) + 1) % kSortKeys);
        return KeyEffect::redraw;
    case 'r':
    case 'I':
        state.reversed = !state.reversed;
        return KeyEffect::redraw;
    case 'p':
        group_by(state, GroupBy::process);
        return KeyEffect::regroup;
    case 'c':
        group_by(state, GroupBy::cgroup);
        return KeyEffect::regroup;
    case 'o':
        group_by(state, GroupBy::cgroup, ContainerGrouping::container);
        return KeyEffect::regroup;
    case 'v':
        group_by(state, GroupBy::cgroup, ContainerGrouping::service);
        return KeyEffect::regroup;
    case 'm':
        group_by(state, GroupBy::mount);
        return KeyEffect::regroup;
    case 'T':
        state.selected_identity.clear();
        // The tree is of cgroups: from any other grouping it goes there.
        state.tree = !(state.tree && state.by == GroupBy::cgroup && !state.containers);
        state.by = GroupBy::cgroup;
        state.containers.reset();
        return KeyEffect::regroup;
    case 'g':
        state.tree = false;
        state.selected_identity.clear();
        next_grouping(state);
        return KeyEffect::regroup;
    case 'a':
        state.accumulated = !state.accumulated;
        return KeyEffect::regroup;
    case 'h':
    case '?':
        state.show_help = true;
        return KeyEffect::redraw;
    case '/':
        state.editing_filter = true;
        return KeyEffect::redraw;
    case '\\':
        state.filter.clear();
        select_first(state);
        return KeyEffect::redraw;
    case '[':
    case ']':
    case '{':
    case '}':
    case kKeyLeft:
    case kKeyRight:
        if (!state.replay)
            return KeyEffect::none;
        state.replay_step = (key == '[' || key == kKeyLeft) ? -1 : (key == ']' || key == kKeyRight) ? 1 : key == '{' ? -10 : 10;
        state.replay_playing = false;
        return KeyEffect::step;
    case ' ':
        if (!state.replay)
            return KeyEffect::none;
        state.replay_playing = !state.replay_playing;
        return KeyEffect::redraw;
    case 't':
        return open_action(state, "throttle");
    case 'k':
        return open_action(state, "kill");
    case 'u':
        return open_action(state, "release");
    case 'P':
        return open_action(state, "protect");
    case kKeyDown:
    case kKeyUp:
    case kKeyNextPage:
    case kKeyPrevPage:
    case kKeyHome:
    case kKeyEnd:
        move_selection(state, key);
        return KeyEffect::redraw;
    default:
        return KeyEffect::none;
    }
}

FullInUrgency full_in_urgency(const std::optional<double> &eta_full_s)
{
    if (!eta_full_s)
        return FullInUrgency::calm;
    if (*eta_full_s < 3600)
        return FullInUrgency::now;
    return *eta_full_s < 24 * 3600 ? FullInUrgency::today : FullInUrgency::calm;
}

void describe_selection(TopViewState &state, const ReportRow *selected)
{
    state.selected_target.clear();
    state.selected_label.clear();
    if (!selected || state.selection_lost)
        return;
    if (state.by == GroupBy::process && !state.containers) {
        state.selected_target = std::to_string(selected->pid);
        state.selected_label = "pid " + state.selected_target + " (" + selected->comm + ")";
    } else if (state.by == GroupBy::cgroup && !selected->cgroup.empty()) {
        state.selected_target = selected->cgroup;
        state.selected_label = "cgroup " + selected->cgroup;
        if (!selected->container_name.empty())
            state.selected_label += " (container " + selected->container_name + ")";
    }
}

std::string pending_prompt(const PendingAction &original)
{
    // What is typed, and the keys, must fit beside a long name (a
    // Kubernetes cgroup path is ~170 bytes): the name gives up its middle.
    PendingAction pending = original;
    pending.label = shorten_middle(pending.label, kPromptLabelWidth);
    if (pending.action == "throttle")
        return "throttle " + pending.label + " to: " + pending.input + "_   (a rate; Enter throttles, Esc cancels)";
    if (pending.action == "release")
        return "release " + pending.label + ", and leave it alone for: " + pending.input +
               "_   (e.g. 10m, empty: no snooze; Enter releases, Esc cancels)";
    if (pending.action == "kill")
        return "kill " + pending.label + "? SIGTERM, then SIGKILL after the policy's kill grace  [y/N]";
    return "protect " + pending.label + " until the agent restarts?  [y/N]";
}

std::string row_identity(const ReportRow &row, const TopViewState &state)
{
    if (showing_tree(state))
        return row.cgroup;  // a tree line is a cgroup path, whoever writes in it
    if (state.containers)
        return container_group_key(row, *state.containers);
    return SnapshotDelta::group_key(row, state.by);
}

size_t select_row(TopViewState &state, const std::vector<ReportRow> &rows, const std::vector<size_t> &heights,
                  size_t lines)
{
    if (rows.empty() || heights.size() != rows.size()) {
        state.selected = 0;
        state.first_shown = 0;
        state.selection_lost = !state.selected_identity.empty();
        return 0;
    }
    if (!state.selection_follows) {  // not moved yet: the first row, whichever it is now
        state.selected = 0;
        state.selected_identity.clear();
    }
    bool found = false;
    if (!state.selected_identity.empty()) {
        for (size_t i = 0; i < rows.size() && !found; ++i)
            if (row_identity(rows[i], state) == state.selected_identity) {
                state.selected = i;
                found = true;
            }
    }
    state.selected = std::min(state.selected, rows.size() - 1);
    // Its row left the list (idle in this refresh, filtered out): the bar
    // does not slide onto a neighbour, which a key would then act on. It
    // comes back with its row; the arrows pick another.
    state.selection_lost = !state.selected_identity.empty() && !found;
    if (!state.selection_lost)
        state.selected_identity = row_identity(rows[state.selected], state);
    // Scrolled up to the selection, or down until it fits below first_shown.
    state.first_shown = std::min(state.first_shown, state.selected);
    auto taken = [&](size_t from, size_t to) {  // lines rows [from, to] take
        size_t sum = 0;
        for (size_t i = from; i <= to; ++i)
            sum += heights[i];
        return sum;
    };
    while (state.first_shown < state.selected && taken(state.first_shown, state.selected) > lines)
        ++state.first_shown;
    size_t shown = 0;
    for (size_t i = state.first_shown, used = 0; i < rows.size() && used + heights[i] <= lines; ++i, ++shown)
        used += heights[i];
    state.page_rows = std::max<size_t>(shown, 1);
    return state.selected;
}

std::vector<MountReport> mounts_by_urgency(const std::vector<MountReport> &mounts)
{
    std::vector<MountReport> sorted = mounts;
    std::stable_sort(sorted.begin(), sorted.end(), [](const MountReport &a, const MountReport &b) {
        if (a.eta_full_s.has_value() != b.eta_full_s.has_value())
            return a.eta_full_s.has_value();
        if (a.eta_full_s && *a.eta_full_s != *b.eta_full_s)
            return *a.eta_full_s < *b.eta_full_s;
        return a.write_bps > b.write_bps;
    });
    return sorted;
}

std::function<bool(const ReportRow &, const ReportRow &)> row_order(const TopViewState &state,
                                                                    const std::vector<MountReport> &mounts)
{
    auto full_in = [mounts](const ReportRow &row) {
        for (const auto &mount : mounts)
            if (mount.dev == row.dev && mount.eta_full_s)
                return *mount.eta_full_s;
        return std::numeric_limits<double>::infinity();  // not filling: last
    };
    // Each key's own order ("first" is what `s` shows on top), ties broken by
    // write rate then total so that equal rows keep still between refreshes.
    auto by_rate = [](const ReportRow &a, const ReportRow &b) {
        return a.write_bps != b.write_bps ? a.write_bps > b.write_bps : a.total_bytes > b.total_bytes;
    };
    const SortKey sort = state.sort;
    auto first = [=](const ReportRow &a, const ReportRow &b) {
        switch (sort) {
        case SortKey::write_rate:
            break;
        case SortKey::total:
            if (a.total_bytes != b.total_bytes)
                return a.total_bytes > b.total_bytes;
            break;
        case SortKey::growth:
            if (a.growth_bps != b.growth_bps)
                return a.growth_bps > b.growth_bps;
            break;
        case SortKey::full_in:
            if (const double x = full_in(a), y = full_in(b); x != y)
                return x < y;
            break;
        case SortKey::pid:
            if (a.pid != b.pid)
                return a.pid < b.pid;
            break;
        case SortKey::name:
            if (a.comm != b.comm)
                return a.comm < b.comm;
            break;
        }
        return by_rate(a, b);
    };
    if (state.reversed)
        return [first](const ReportRow &a, const ReportRow &b) { return first(b, a); };
    return first;
}

std::vector<ReportRow> sorted_rows(const std::vector<ReportRow> &rows, const TopViewState &state,
                                   const std::vector<MountReport> &mounts)
{
    std::vector<ReportRow> sorted;
    for (const auto &row : rows)
        if (row_matches_filter(row, state.filter))
            sorted.push_back(row);
    std::stable_sort(sorted.begin(), sorted.end(), row_order(state, mounts));
    return sorted;
}

}  // namespace diskwatch
