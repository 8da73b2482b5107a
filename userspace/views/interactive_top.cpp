#include "views/interactive_top.h"

#include <ncurses.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "events/internal_errors.h"
#include "monitor/write_monitor.h"
#include "views/format.h"
#include "views/rate_history.h"
#include "views/text_report.h"

namespace diskwatch {

namespace {

// Restores the terminal however we leave (exception, early return).
struct CursesSession {
    CursesSession()
    {
        initscr();
        cbreak();
        noecho();
        keypad(stdscr, TRUE);
        // Esc alone answers at once: curses waits ESCDELAY ms (1000 by
        // default) for the rest of an escape sequence; a terminal sends one
        // in a single write, well within 25 ms.
        set_escdelay(25);
        curs_set(0);
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

void draw_help()
{
    erase();
    int y = 1;
    mvprintw(y++, 2, "ebpf-diskwatch top: who writes how many bytes, where");
    y++;
    mvprintw(y++, 4, "q Esc    quit");
    mvprintw(y++, 4, "s        next sort: write rate, total, pid, name");
    mvprintw(y++, 4, "p c m    group by process, cgroup, mount (g cycles)");
    mvprintw(y++, 4, "a        accumulated: totals since start, idle rows kept");
    mvprintw(y++, 4, "/        filter rows by name or pid (Enter keeps it, Esc clears it)");
    mvprintw(y++, 4, "\\        clear the filter");
    mvprintw(y++, 4, "h ?      this help");
    y++;
    mvprintw(y++, 4, "[name]   a process that has exited; its bytes are kept");
    mvprintw(y++, 4, "HISTORY  write rate over the last refreshes: _ idle, . : - = + * # @ up to the row's peak");
    mvprintw(y++, 4, "AGENT    what a running agent does to the row: throttled, killed, flagged (a rule holds)");
    mvprintw(y++, 4, "         (top attached to the agent's control socket; --local loads its own programs)");
    mvprintw(y++, 2, "any key returns");
    refresh();
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

void draw(const WriteReport &report, const TopViewState &state, const std::string &source,
          const RateHistory &history, const std::string &problem)
{
    erase();
    const int width = COLS;
    int y = 0;
    mvprintw(y++, 0, "ebpf-diskwatch  %s  %s  by %s  sort %s%s", rfc3339_utc(report.ts).c_str(), source.c_str(),
             std::string(to_string(state.by)).c_str(), std::string(to_string(state.sort)).c_str(),
             state.accumulated ? "  [accumulated]" : "");
    if (!problem.empty()) {
        attron(COLOR_PAIR(4));
        mvprintw(y++, 0, "%.*s", std::max(0, width - 1), terminal_safe(problem).c_str());
        attroff(COLOR_PAIR(4));
    }
    size_t mount_width = 20;
    for (const auto &mount : report.mounts)
        mount_width = std::max(mount_width, terminal_safe(mount.mount).size());
    mount_width = std::min<size_t>(mount_width, static_cast<size_t>(std::max(20, COLS - 90)));
    for (const auto &mount : report.mounts) {
        if (y >= LINES / 2)
            break;
        const int bar_width = 20;
        const int filled = static_cast<int>(std::lround(mount.used_pct / 100.0 * bar_width));
        const int color = mount.used_pct >= 90 ? 4 : mount.used_pct >= 80 ? 3 : 2;
        mvprintw(y, 0, "%-*s [", static_cast<int>(mount_width), fit_path(terminal_safe(mount.mount), mount_width).c_str());
        attron(COLOR_PAIR(color));
        for (int i = 0; i < bar_width; ++i)
            addch(i < filled ? '|' : ' ');
        attroff(COLOR_PAIR(color));
        printw("] %5.1f%% %7s  write %9s  grow %9s  fill %9s  full in %s", mount.used_pct,
               human_bytes(static_cast<double>(mount.size_bytes)).c_str(), human_rate(mount.write_bps).c_str(),
               human_rate(mount.growth_bps).c_str(),
               mount.fill_bps ? human_rate(*mount.fill_bps).c_str() : "-", human_duration(mount.eta_full_s).c_str());
        ++y;
    }
    ++y;
    attron(COLOR_PAIR(1));
    char header[256];
    std::snprintf(header, sizeof(header), "%8s  %-16s %-30s %-20s %10s %10s %10s %-*s %s", "PID", "COMM",
                  "CGROUP/UNIT", "MOUNT", "WRITE/s", "GROW/s", "TOTAL", static_cast<int>(history.length()), "HISTORY",
                  "AGENT");
    mvprintw(y, 0, "%-*s", width, header);
    attroff(COLOR_PAIR(1));
    ++y;
    for (const auto &row : sorted_rows(report.rows, state)) {
        if (y >= LINES - 1)
            break;
        std::string comm = terminal_safe(row.comm);
        if (row.exited)
            comm = "[" + comm + "]";
        mvprintw(y, 0, "%8u  %-16.16s %-30s %-20s %10s %10s %10s %s ", row.pid, comm.c_str(),
                 fit_path(terminal_safe(who_text(row)), 30).c_str(),
                 fit_path(terminal_safe(row.mount.empty() ? row.dev : row.mount), 20).c_str(),
                 human_rate(row.write_bps).c_str(), human_rate(row.growth_bps).c_str(),
                 human_bytes(static_cast<double>(row.total_bytes)).c_str(), history.sparkline(row, state.by).c_str());
        if (!row.agent_action.empty()) {
            attron(COLOR_PAIR(4) | A_BOLD);
            printw("%s", action_mark(row.agent_action));
            attroff(COLOR_PAIR(4) | A_BOLD);
        }
        ++y;
        // The file a top writer writes, on a detail line; a deleted file
        // that is still open and growing stands out.
        if (!row.files.empty() && y < LINES - 1) {
            const bool deleted = std::any_of(row.files.begin(), row.files.end(), [](const WrittenFile &f) { return f.deleted; });
            if (deleted)
                attron(COLOR_PAIR(4));
            mvprintw(y++, 10, "%.*s", std::max(0, width - 11), ("file " + files_text(row)).c_str());
            if (deleted)
                attroff(COLOR_PAIR(4));
        }
    }
    const auto &drops = report.drops;
    if (state.editing_filter || !state.filter.empty()) {
        // The filter is typed printable ASCII; terminal_safe all the same.
        mvprintw(LINES - 1, 0, "filter: %s%s   (%s)", terminal_safe(state.filter).c_str(),
                 state.editing_filter ? "_" : "", state.editing_filter ? "Enter keep, Esc clear" : "\\ clear, / edit");
    } else {
        // Every drop reason by its short label (vocabulary/drop_reasons.h),
        // the non-zero ones: the line has no room for eight zeros.
        std::string dropped;
        for (const auto &reason : kDropReasons)
            if ((reason.views & kDropViewLive) && drops.*reason.counter)
                dropped += " " + std::string(reason.label) + " " + std::to_string(drops.*reason.counter);
        mvprintw(LINES - 1, 0, "q quit  s sort  p/c/m group  a accumulated  / filter  h help   drops:%s",
                 dropped.empty() ? " 0" : dropped.c_str());
    }
    refresh();
}

}  // namespace

int run_interactive_top(ReportFeed &feed, double refresh_s, TopViewState state, volatile bool *stop)
{
    CursesSession session;
    const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(refresh_s));
    auto next_refresh = std::chrono::steady_clock::now() + period;
    const std::string source = feed.describe();
    RateHistory history;
    WriteReport report;
    std::string problem;  // the agent went away: said on screen, retried every refresh
    auto refresh_report = [&] {
        ReportOptions options{state.by, state.accumulated};
        // The paths of the files the top rows write, as batch asks (cli/top.cpp):
        // without it every file line reads "inode N".
        options.rows_with_files = kTopRowsWithFiles;
        options.all_mounts = state.all_mounts;
        std::string error;
        // A refresh that throws (a name that breaks a parser, an allocation)
        // is said on screen and retried at the next one; the view stays.
        const bool survived = catch_at_boundary("top", [&] {
            if (auto fresh = feed.refresh(options, &error)) {
                report = std::move(*fresh);
                history.record(report);
                problem.clear();
            } else {
                problem = error;
            }
        });
        if (!survived)
            problem = "internal error in this refresh (counted); retrying";
    };
    auto redraw = [&] {
        if (state.show_help)
            draw_help();
        else
            draw(report, state, source, history, problem);
    };
    refresh_report();
    redraw();
    timeout(100);  // getch waits at most 100 ms: keys stay responsive, events keep draining
    while (!state.quit && !*stop) {
        const int key = getch();
        if (key != ERR) {
            const KeyEffect effect = apply_key(state, key);
            if (state.quit)
                break;
            if (effect == KeyEffect::regroup) {
                // Regroup the data we have now rather than waiting a whole interval.
                refresh_report();
                next_refresh = std::chrono::steady_clock::now() + period;
            }
            if (effect != KeyEffect::none || key == KEY_RESIZE)
                redraw();
        }
        feed.wait(0);
        if (std::chrono::steady_clock::now() >= next_refresh) {
            refresh_report();
            next_refresh += period;
            redraw();
        }
    }
    return 0;
}

}  // namespace diskwatch
