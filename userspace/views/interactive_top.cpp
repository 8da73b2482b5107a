#include "views/interactive_top.h"

#include <langinfo.h>
#include <ncurses.h>

#include <algorithm>
#include <clocale>
#include <cstring>
#include <cstdlib>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <future>
#include <utility>

#include "aggregate/container_groups.h"
#include "vocabulary/internal_errors.h"
#include "monitor/write_monitor.h"
#include "views/cgroup_tree.h"
#include "views/format.h"
#include "views/rate_history.h"
#include "views/screen_fit.h"
#include "views/text_report.h"
#include "rules/units.h"

namespace diskwatch {

namespace {

// Restores the terminal however we leave (exception, early return).
struct CursesSession {
    bool unicode = false;  // the terminal's locale is UTF-8: the sparkline's blocks can be drawn

    CursesSession()
    {
        // The character type only (numbers keep the C locale's "1.5"): with a
        // UTF-8 one, ncursesw writes the sparkline's blocks as one column
        // each. Every name is made ASCII before it is drawn (screen_text), so
        // a name's bytes cannot become characters this way.
        std::setlocale(LC_CTYPE, "");
        unicode = std::strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
        initscr();
        cbreak();
        noecho();
        keypad(stdscr, TRUE);
        // Esc alone answers within 100 ms: curses waits ESCDELAY ms (1000 by
        // default) for the rest of an escape sequence. Not less: over a slow
        // ssh or mosh link an arrow key's bytes may come apart, and a lone
        // ESC quits. The user's own ESCDELAY wins (initscr read it).
        if (const char *given = std::getenv("ESCDELAY"); !given || !*given)
            set_escdelay(100);
        curs_set(0);
        // Clicks select rows (as in htop); the wheel and the rest are not asked for.
        mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED, nullptr);
        mouseinterval(0);
        if (has_colors()) {
            start_color();
            use_default_colors();
            init_pair(1, COLOR_BLACK, COLOR_CYAN);    // column header
            init_pair(2, COLOR_GREEN, -1);            // fill bar, low
            init_pair(3, COLOR_YELLOW, -1);           // fill bar, above 80%
            init_pair(4, COLOR_RED, -1);              // fill bar, above 90%
        }
    }
    ~CursesSession() { endwin(); }
};

// Raw text (a name any user controls) as the narrow curses prints it: one
// column per byte, nothing that drives the terminal.
std::string screen_text(std::string_view raw) { return ascii_only(terminal_safe(raw)); }

// Writes `text`, already fitted to its column, at (y, x) with `attributes`;
// never past the right edge (a write there would wrap onto the next line).
void put(int y, size_t x, const std::string &text, attr_t attributes = A_NORMAL)
{
    const auto width = static_cast<size_t>(std::max(COLS, 0));
    if (x >= width || y >= LINES)
        return;
    const std::string fitted = cut_to_width(text, width - x);
    if (attributes != A_NORMAL)
        attron(attributes);
    mvaddnstr(y, static_cast<int>(x), fitted.c_str(), static_cast<int>(fitted.size()));
    if (attributes != A_NORMAL)
        attroff(attributes);
}

void draw_help()
{
    erase();
    static const char *const lines[] = {
        "  ebpf-diskwatch top: who writes how many bytes, where",
        "",
        "    q Esc    quit",
        "    s        next sort: write rate, total, growth, time to full, pid, name",
        "    r I      reverse the sort",
        "    p c m    group by process, cgroup, mount",
        "    T        cgroups as a tree, each with its subtree's totals (like systemd-cgtop)",
        "    o v      group by container, by Compose service (their cgroup rows merged)",
        "    g        next grouping (the five in turn)",
        "    a        accumulated: totals since start, idle rows kept",
        "    /        filter rows by name or pid (Enter keeps it, Esc clears it)",
        "    \\        clear the filter",
        "    Up Down PgUp PgDn End, a click: select a row (the bar then follows it); Home: the first row",
        "    t k u P  attached to an agent: throttle, kill, release (with a snooze), protect the selected",
        "             row's process or cgroup, each confirmed first; the agent's events say top asked",
        "    [ ] { }  with --replay: step one recorded window back or forward, { } ten; space plays or pauses",
        "    h ?      this help",
        "",
        "    [name]   a process that has exited; its bytes are kept",
        "    HISTORY  write rate over the last refreshes, up to the row's peak: blocks (a dot idle) in a UTF-8",
        "             locale, else _ idle, then . : - = + * # @",
        "    AGENT    what a running agent does to the row: throttled, killed, flagged (a rule holds)",
        "             (top attached to the agent's control socket; --local loads its own programs)",
        "    narrow terminals drop HISTORY, then MOUNT, TOTAL, GROW/s; long paths lose their middle",
        "  any key returns",
    };
    int y = 1;
    for (const char *line : lines)
        put(y++, 0, cut_to_width(line, static_cast<size_t>(std::max(COLS, 1))));
    refresh();
}

// The sparkline (views/rate_history.h, ASCII levels) at (y, x), `width`
// columns at most: as Unicode blocks where the locale is UTF-8, one column
// each; as the ASCII levels elsewhere.
void put_sparkline(int y, size_t x, const std::string &levels, size_t width, bool unicode)
{
    if (!unicode) {
        put(y, x, pad_to_width(levels, width));
        return;
    }
    static constexpr std::string_view kAscii = "_.:-=+*#@";
    static const char *const kBlocks[] = {"\u00b7", "\u2581", "\u2582", "\u2583", "\u2584",
                                          "\u2585", "\u2586", "\u2587", "\u2588"};  // idle: a middle dot
    const auto screen_width = static_cast<size_t>(std::max(COLS, 0));
    for (size_t i = 0; i < levels.size() && i < width && x + i < screen_width; ++i) {
        const size_t level = kAscii.find(levels[i]);
        mvaddstr(y, static_cast<int>(x + i), level == std::string_view::npos ? " " : kBlocks[level]);
    }
}

const char *action_mark(const std::string &action)
{
    if (action == "kill")
        return "killed";
    if (action == "throttle")
        return "throttled";
    if (action == "offender")
        return "flagged";
    return "";
}

attr_t fill_color(double used_pct)
{
    return COLOR_PAIR(used_pct >= 90 ? 4 : used_pct >= 80 ? 3 : 2);
}

// A mount line: its path (shortened in the middle), fill bar, used, size,
// write, growth, fill rate and time to full; at 80 columns the least needed
// go first, and "full in" stays (views/screen_fit.h).
enum MountColumn { m_path, m_bar, m_used, m_size, m_write, m_grow, m_fill, m_full_in, m_count };

std::vector<PlacedColumn> mount_layout(const WriteReport &report, size_t width)
{
    size_t longest = 16;
    for (const auto &mount : report.mounts)
        longest = std::max(longest, screen_text(mount.mount).size());
    std::vector<ColumnSpec> specs(m_count);
    // The path gets what the longest needs, no more: the numbers stay near it.
    specs[m_path] = {16, longest, 0, 0};
    specs[m_bar] = {7, 22, 3, 0};
    specs[m_used] = {6, 6, 0, 0};
    specs[m_size] = {7, 7, 6, 0};
    specs[m_write] = {13, 13, 5, 0};  // "write 1023M/s"
    specs[m_grow] = {13, 13, 4, 0};   // "grow -1.77M/s": growth and fill may be negative
    specs[m_fill] = {13, 13, 2, 0};
    specs[m_full_in] = {14, 14, 0, 0};
    return layout_columns(specs, width);
}

void draw_mount(int y, const MountReport &mount, const std::vector<PlacedColumn> &layout)
{
    for (const auto &column : layout) {
        const size_t w = column.width;
        switch (column.index) {
        case m_path:
            put(y, column.x, pad_to_width(shorten_middle(screen_text(mount.mount), w), w));
            break;
        case m_bar: {
            const size_t inner = w - 2;
            const auto filled = static_cast<size_t>(
                std::lround(std::clamp(mount.used_pct, 0.0, 100.0) / 100.0 * static_cast<double>(inner)));
            put(y, column.x, "[");
            put(y, column.x + 1, std::string(filled, '|') + std::string(inner - filled, ' '), fill_color(mount.used_pct));
            put(y, column.x + 1 + inner, "]");
            break;
        }
        case m_used: {
            char used[16];
            std::snprintf(used, sizeof(used), "%5.1f%%", mount.used_pct);
            put(y, column.x, pad_to_width(used, w, true), fill_color(mount.used_pct));
            break;
        }
        case m_size:
            put(y, column.x, pad_to_width(human_bytes(static_cast<double>(mount.size_bytes)), w, true));
            break;
        case m_write:
            put(y, column.x, pad_to_width("write " + human_rate(mount.write_bps), w));
            break;
        case m_grow:
            put(y, column.x, pad_to_width("grow " + human_rate(mount.growth_bps), w));
            break;
        case m_fill:
            put(y, column.x, pad_to_width("fill " + (mount.fill_bps ? human_rate(*mount.fill_bps) : "-"), w));
            break;
        case m_full_in: {
            // The number an operator acts on, coloured by how soon (top_state.h).
            const FullInUrgency urgency = full_in_urgency(mount.eta_full_s);
            const attr_t attributes = urgency == FullInUrgency::now     ? COLOR_PAIR(4) | A_BOLD
                                      : urgency == FullInUrgency::today ? COLOR_PAIR(3)
                                                                        : A_NORMAL;
            put(y, column.x, pad_to_width("full in " + human_duration(mount.eta_full_s), w), attributes);
            break;
        }
        default:
            break;
        }
    }
}

// The rows' columns, in order; at 80 columns HISTORY goes first, then MOUNT,
// TOTAL, GROW/s; wider, CGROUP/UNIT and MOUNT get what their longest
// names need (up to all the room left).
enum RowColumn { r_pid, r_comm, r_who, r_mount, r_write, r_grow, r_total, r_history, r_agent, r_count };

std::vector<PlacedColumn> row_layout(size_t width, size_t history_length, bool agent_column, size_t longest_who,
                                     size_t longest_mount)
{
    std::vector<ColumnSpec> specs(r_count);
    specs[r_pid] = {7, 8, 0, 0};
    specs[r_comm] = {15, 16, 0, 0};  // a whole comm (15 bytes), brackets when it exited
    specs[r_who] = {11, std::max<size_t>(11, longest_who), 2, 0};  // "CGROUP/UNIT"
    specs[r_mount] = {8, std::max<size_t>(8, longest_mount), 5, 0};
    specs[r_write] = {8, 10, 0, 0};
    specs[r_grow] = {8, 10, 3, 0};
    specs[r_total] = {6, 10, 4, 0};
    specs[r_history] = {history_length, history_length, 6, 0};
    specs[r_agent] = {9, 9, 1, 0};
    if (!agent_column)
        specs.pop_back();
    return layout_columns(specs, width);
}

const char *const kRowTitles[r_count] = {"PID", "COMM", "CGROUP/UNIT", "MOUNT", "WRITE/s", "GROW/s", "TOTAL", "HISTORY", "AGENT"};
const bool kRowRightAligned[r_count] = {true, false, false, false, true, true, true, false, false};

// The row's file line: each path shortened in the middle so that both its
// start and its file name show, "(DELETED, still open)" kept whole.
std::string file_line(const ReportRow &row, size_t width)
{
    const std::string label = "file ";
    if (width <= label.size())
        return cut_to_width(label, width);
    size_t room = width - label.size();
    if (row.files.size() == 1) {
        const WrittenFile &file = row.files.front();
        const std::string suffix = file.deleted ? " (DELETED, still open)" : "";
        const std::string name = file.path.empty() ? "inode " + std::to_string(file.ino) : screen_text(file.path);
        if (room > suffix.size() + kEllipsis.size())
            return label + shorten_middle(name, room - suffix.size()) + suffix;
    }
    return label + shorten_middle(ascii_only(files_text(row)), room);
}

// Draws the view; returns which row each screen line shows (-1: none), for
// the mouse. Resolves the selection and the scrolling into `state`.
std::vector<int> draw(const WriteReport &report, TopViewState &state, const std::string &source,
                      const RateHistory &history, const std::string &problem, bool unicode)
{
    erase();
    const auto width = static_cast<size_t>(std::max(COLS, 1));
    int y = 0;
    char title[256];
    // Narrow, the time of day only: the date would push the sort off the line.
    const std::string when = width < 100 ? rfc3339_utc(report.ts).substr(11, 8) : rfc3339_utc(report.ts);
    std::snprintf(title, sizeof(title), "ebpf-diskwatch  %s  %s  by %s  sort %s%s%s", when.c_str(),
                  screen_text(source).c_str(), std::string(grouping_name(state)).c_str(),
                  std::string(to_string(state.sort)).c_str(), state.reversed ? " (reversed)" : "",
                  state.accumulated ? "  [accumulated]" : "");
    put(y++, 0, cut_to_width(title, width));
    if (!problem.empty())
        put(y++, 0, cut_to_width(screen_text(problem), width), COLOR_PAIR(4));
    const auto mounts = mount_layout(report, width);
    for (const auto &mount : mounts_by_urgency(report.mounts)) {
        if (y >= LINES / 2)
            break;
        draw_mount(y++, mount, mounts);
    }
    ++y;
    const bool agent_column = source.rfind("agent", 0) == 0 ||
                              std::any_of(report.rows.begin(), report.rows.end(),
                                          [](const ReportRow &row) { return !row.agent_action.empty(); });
    // The rows, and what the CGROUP/UNIT column says of each: by cgroup as a
    // tree (T), each line indented by its depth and named by its last component.
    std::vector<ReportRow> rows;
    std::vector<std::string> who;
    if (showing_tree(state)) {
        std::vector<ReportRow> matching;
        for (const auto &row : report.rows)
            if (row_matches_filter(row, state.filter))
                matching.push_back(row);
        for (auto &line : cgroup_tree(matching, row_order(state, report.mounts))) {
            who.push_back(std::string(2 * line.depth, ' ') + screen_text(line.name));
            rows.push_back(std::move(line.row));
        }
    } else {
        rows = sorted_rows(report.rows, state, report.mounts);
        for (const auto &row : rows)
            who.push_back(screen_text(who_text(row)));
    }
    size_t longest_who = 0;
    size_t longest_mount = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
        const ReportRow &row = rows[i];
        longest_who = std::max(longest_who, who[i].size());
        longest_mount = std::max(longest_mount, screen_text(row.mount.empty() ? row.dev : row.mount).size());
    }
    const auto columns = row_layout(width, history.length(), agent_column, longest_who, longest_mount);
    std::string header(width, ' ');
    for (const auto &column : columns) {
        if (column.x >= width)
            break;  // a terminal narrower than the columns that always stay: cut at the edge
        const size_t room = std::min(column.width, width - column.x);
        header.replace(column.x, room,
                       pad_to_width(kRowTitles[column.index], column.width, kRowRightAligned[column.index]).substr(0, room));
    }
    put(y++, 0, header, COLOR_PAIR(1));
    // The selection's bar, and the scrolling that keeps it in sight: a row
    // takes a second line for its files (the busiest rows only).
    std::vector<size_t> heights;
    heights.reserve(rows.size());
    for (const auto &row : rows)
        heights.push_back(row.files.empty() ? 1 : 2);
    const size_t free_lines = static_cast<size_t>(std::max(LINES - 1 - y, 0));
    const size_t selected = select_row(state, rows, heights, free_lines);
    describe_selection(state, rows.empty() ? nullptr : &rows[selected]);
    std::vector<int> row_at_line(static_cast<size_t>(std::max(LINES, 0)), -1);
    for (size_t index = state.first_shown; index < rows.size(); ++index) {
        const ReportRow &row = rows[index];
        if (y + static_cast<int>(heights[index]) > LINES - 1)
            break;
        const attr_t bar = index == selected && !state.selection_lost ? A_REVERSE : A_NORMAL;
        for (int line = y; line < y + static_cast<int>(heights[index]); ++line)
            row_at_line[static_cast<size_t>(line)] = static_cast<int>(index);
        if (bar != A_NORMAL)
            put(y, 0, std::string(width, ' '), bar);
        for (const auto &column : columns) {
            const size_t w = column.width;
            std::string text;
            switch (column.index) {
            case r_pid:
                text = row.pid ? std::to_string(row.pid) : "";  // a tree's cgroup that wrote nothing itself
                break;
            case r_comm:
                text = row.exited ? "[" + screen_text(row.comm) + "]" : screen_text(row.comm);
                break;
            case r_who:
                // A tree line keeps its indent: its name is cut at the right.
                text = showing_tree(state) ? cut_to_width(who[index], w) : shorten_middle(who[index], w);
                break;
            case r_mount:
                text = shorten_middle(screen_text(row.mount.empty() ? row.dev : row.mount), w);
                break;
            case r_write:
                text = human_rate(row.write_bps);
                break;
            case r_grow:
                text = human_rate(row.growth_bps);
                break;
            case r_total:
                text = human_bytes(static_cast<double>(row.total_bytes));
                break;
            case r_history:
                if (bar != A_NORMAL)
                    attron(bar);
                put_sparkline(y, column.x, history.sparkline(row, state.by), w, unicode);
                if (bar != A_NORMAL)
                    attroff(bar);
                continue;
            case r_agent:
                text = action_mark(row.agent_action);
                break;
            default:
                break;
            }
            const attr_t attributes = column.index == r_agent && !text.empty() ? COLOR_PAIR(4) | A_BOLD : A_NORMAL;
            put(y, column.x, pad_to_width(text, w, kRowRightAligned[column.index]), attributes | bar);
        }
        ++y;
        // The file a top writer writes, on a detail line; a deleted file
        // that is still open and growing stands out.
        if (!row.files.empty()) {
            const bool deleted = std::any_of(row.files.begin(), row.files.end(), [](const WrittenFile &f) { return f.deleted; });
            const size_t indent = width >= 40 ? 10 : 2;
            put(y++, indent, file_line(row, width - std::min(indent, width)), deleted ? COLOR_PAIR(4) : A_NORMAL);
        }
    }
    const auto &drops = report.drops;
    std::string status;
    attr_t status_attributes = A_NORMAL;
    if (state.pending) {
        status = screen_text(pending_prompt(*state.pending));
        status_attributes = A_BOLD;
    } else if (!state.message.empty()) {
        status = screen_text(state.message);
        status_attributes = A_BOLD;
    } else if (state.editing_filter || !state.filter.empty()) {
        // The filter is typed printable ASCII; made safe all the same.
        status = "filter: " + screen_text(state.filter) + (state.editing_filter ? "_" : "") + "   (" +
                 (state.editing_filter ? "Enter keep, Esc clear" : "\\ clear, / edit") + ")";
    } else {
        // Every drop reason by its short label (vocabulary/drop_reasons.h),
        // the non-zero ones: the line has no room for eight zeros.
        std::string dropped;
        for (const auto &reason : kDropReasons)
            if ((reason.views & kDropViewLive) && drops.*reason.counter)
                dropped += " " + std::string(reason.label) + " " + std::to_string(drops.*reason.counter);
        status = "q quit  s sort  p/c/o/v/m group  a accumulated  / filter  h help   drops:" +
                 (dropped.empty() ? std::string(" 0") : dropped);
    }
    if (!rows.empty() && !state.pending && state.message.empty())
        status += "   row " + (state.selection_lost ? std::string("-") : std::to_string(selected + 1)) + "/" +
                  std::to_string(rows.size());
    // The last cell of the last line is left empty: writing it scrolls some terminals.
    put(LINES - 1, 0, cut_to_width(status, width - 1), status_attributes);
    refresh();
    return row_at_line;
}

// One refresh of the feed, as the view's loop takes it (on its thread or on
// the round trip's own): the report, or the error; an exception is caught
// at this boundary, counted, and said on screen.
struct Fetched {
    ReportOptions options;
    std::optional<WriteReport> report;
    std::string error;
    bool threw = false;
};

Fetched fetch(ReportFeed &feed, const ReportOptions &options)
{
    Fetched fetched;
    fetched.options = options;
    fetched.threw = !catch_at_boundary("top", [&] { fetched.report = feed.refresh(options, &fetched.error); });
    return fetched;
}

// The report's cgroup rows as the tree's lines, for the rate history: each
// subtree keeps its own (the order does not matter there).
WriteReport tree_report(const WriteReport &by_cgroup)
{
    WriteReport tree = by_cgroup;
    tree.rows.clear();
    tree.grouping = kTreeGrouping;
    for (auto &line : cgroup_tree(by_cgroup.rows, [](const ReportRow &, const ReportRow &) { return false; }))
        tree.rows.push_back(std::move(line.row));
    return tree;
}

// The confirmed action, as the agent's `act` takes it; returns what the
// status line says: what was done, or why not.
std::string send_action(ReportFeed &feed, const PendingAction &pending)
{
    OperatorAction action;
    action.action = pending.action;
    action.target = pending.target;
    std::string error;
    if (pending.action == "throttle") {
        const auto rate = parse_rate(pending.input, &error);
        if (!rate)
            return "not throttled: " + error;
        action.rate_bps = *rate;
    } else if (pending.action == "release" && !pending.input.empty()) {
        const auto snooze = parse_duration(pending.input, &error);
        if (!snooze)
            return "not released: " + error;
        action.for_s = *snooze;
    }
    if (auto done = feed.act(action, &error))
        return *done;
    return pending.action + " refused: " + error;
}

}  // namespace

int run_interactive_top(ReportFeed &feed, double refresh_s, TopViewState state, volatile bool *stop)
{
    // Attached to an agent, a refresh (and an action) is a round trip that
    // the agent answers from its next refresh: up to two of its intervals,
    // seconds with a slow policy. It runs on a thread of its own, so that
    // keys and redraws never wait for it. The local feed reads our own maps
    // at once, on this thread (its monitor is not shared across threads).
    // Declared before the curses session: on quit the terminal is given back
    // first, then a round trip still out is waited for (its timeout bounds it).
    const bool background = feed.source() == ReportSource::agent;
    std::future<Fetched> fetching;
    std::future<std::string> acting;
    CursesSession session;
    const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(refresh_s));
    auto next_refresh = std::chrono::steady_clock::now() + period;
    // A replay's says which recorded moment is shown: asked again at each drawing.
    std::string source = feed.describe();
    RateHistory history;
    WriteReport report;
    std::string problem;  // the agent went away: said on screen, retried every refresh
    auto options_now = [&] {
        ReportOptions options{state.containers ? GroupBy::cgroup : state.by, state.accumulated};
        // The paths of the files the top rows write, as batch asks (cli/top.cpp):
        // without it every file line reads "inode N".
        options.rows_with_files = kTopRowsWithFiles;
        options.all_mounts = state.all_mounts;
        return options;
    };
    auto apply = [&](Fetched fetched) {
        if (fetched.threw) {
            problem = "internal error in this refresh (counted); retrying";
        } else if (fetched.report) {
            // By container or service: merged from the cgroup rows here,
            // whether local or attached (the feed knows three groupings).
            report = state.containers ? group_by_container(*fetched.report, *state.containers)
                                      : std::move(*fetched.report);
            history.record(showing_tree(state) ? tree_report(report) : report);
            problem.clear();
        } else {
            problem = fetched.error;
        }
    };
    bool refresh_again = false;  // asked while one was out (a regroup): another once it is back
    auto start_refresh = [&] {
        const ReportOptions options = options_now();
        if (!background) {
            apply(fetch(feed, options));
            return;
        }
        if (fetching.valid()) {
            refresh_again = true;
            return;
        }
        fetching = std::async(std::launch::async, [&feed, options] { return fetch(feed, options); });
    };
    std::vector<int> row_at_line;  // what the last drawing put on each line, for a click
    auto redraw = [&] {
        if (state.show_help)
            draw_help();
        else {
            if (state.replay)
                source = feed.describe() + (state.replay_playing ? "  playing" : "  paused: [ ] step, space plays");
            row_at_line = draw(report, state, source, history, problem, session.unicode);
        }
    };
    if (background) {
        // The first picture: worth the one wait (there is nothing to show before it).
        start_refresh();
        apply(fetching.get());
    } else {
        start_refresh();
    }
    redraw();
    timeout(100);  // getch waits at most 100 ms: keys stay responsive, events keep draining
    while (!state.quit && !*stop) {
        const int key = getch();
        MEVENT click{};
        if (key == KEY_RESIZE) {
            // curses has the new LINES and COLS: drawn again at once, to the new size.
            redraw();
        } else if (key == KEY_MOUSE) {
            // A click on a row (or its file line) selects it.
            if (getmouse(&click) == OK && !state.show_help && click.y >= 0 &&
                static_cast<size_t>(click.y) < row_at_line.size() && row_at_line[static_cast<size_t>(click.y)] >= 0) {
                state.selected = static_cast<size_t>(row_at_line[static_cast<size_t>(click.y)]);
                state.selected_identity.clear();
                state.selection_follows = true;
                redraw();
            }
        } else if (key != ERR) {
            const KeyEffect effect = apply_key(state, key);
            if (state.quit)
                break;
            if (effect == KeyEffect::act) {
                // Sent to the agent on a thread of its own (it answers from
                // its next refresh); its answer, or why not, on the status line.
                if (acting.valid()) {
                    state.message = "the agent has not answered the last request yet; ask again";
                } else {
                    state.message = "asking the agent: " + state.pending->action + " " + state.pending->label;
                    acting = std::async(std::launch::async,
                                        [&feed, pending = *state.pending] { return send_action(feed, pending); });
                }
                state.pending.reset();
            }
            if (effect == KeyEffect::step) {
                if (!feed.step(std::exchange(state.replay_step, 0)))
                    state.message = "the end of the replayed record";
                start_refresh();
                next_refresh = std::chrono::steady_clock::now() + period;
            }
            if (effect == KeyEffect::regroup) {
                // Regroup the data we have now rather than waiting a whole interval.
                start_refresh();
                next_refresh = std::chrono::steady_clock::now() + period;
            }
            if (effect != KeyEffect::none)
                redraw();
        }
        if (acting.valid() && acting.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
            state.message = acting.get();
            next_refresh = std::chrono::steady_clock::now();  // show what it did at once
            redraw();
        }
        if (fetching.valid() && fetching.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
            Fetched fetched = fetching.get();
            // Asked for another grouping since: that one is wanted, not this.
            if (fetched.options.by == options_now().by && fetched.options.include_idle == state.accumulated)
                apply(std::move(fetched));
            else
                refresh_again = true;
            redraw();
            if (std::exchange(refresh_again, false))
                start_refresh();
        }
        feed.wait(0);
        if (std::chrono::steady_clock::now() >= next_refresh) {
            if (state.replay && state.replay_playing && !feed.step(1)) {
                state.replay_playing = false;
                state.message = "the end of the replayed record";
            }
            start_refresh();
            next_refresh = std::max(next_refresh + period, std::chrono::steady_clock::now());
            if (!background)
                redraw();
        }
    }
    return 0;
}

}  // namespace diskwatch
