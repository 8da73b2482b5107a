#include "views/interactive_top.h"

#include <ncurses.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "views/format.h"
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
    mvprintw(y++, 4, "q        quit");
    mvprintw(y++, 4, "s        next sort: write rate, total, pid, name");
    mvprintw(y++, 4, "p c m    group by process, cgroup, mount (g cycles)");
    mvprintw(y++, 4, "a        accumulated: totals since start, idle rows kept");
    mvprintw(y++, 4, "h ?      this help");
    y++;
    mvprintw(y++, 4, "[name]   a process that has exited; its bytes are kept");
    mvprintw(y++, 2, "any key returns");
    refresh();
}

void draw(const WriteReport &report, const TopViewState &state, const std::string &hooks)
{
    erase();
    const int width = COLS;
    int y = 0;
    mvprintw(y++, 0, "ebpf-diskwatch  %s  hooks %s  by %s  sort %s%s", rfc3339_utc(report.ts).c_str(), hooks.c_str(),
             std::string(to_string(state.by)).c_str(), std::string(to_string(state.sort)).c_str(),
             state.accumulated ? "  [accumulated]" : "");
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
    std::snprintf(header, sizeof(header), "%8s  %-16s %-30s %-20s %10s %10s %10s", "PID", "COMM", "CGROUP/UNIT",
                  "MOUNT", "WRITE/s", "GROW/s", "TOTAL");
    mvprintw(y, 0, "%-*s", width, header);
    attroff(COLOR_PAIR(1));
    ++y;
    for (const auto &row : sorted_rows(report.rows, state)) {
        if (y >= LINES - 1)
            break;
        std::string comm = terminal_safe(row.comm);
        if (row.exited)
            comm = "[" + comm + "]";
        mvprintw(y++, 0, "%8u  %-16.16s %-30s %-20s %10s %10s %10s", row.pid, comm.c_str(),
                 fit_path(terminal_safe(who_text(row)), 30).c_str(),
                 fit_path(terminal_safe(row.mount.empty() ? row.dev : row.mount), 20).c_str(),
                 human_rate(row.write_bps).c_str(), human_rate(row.growth_bps).c_str(),
                 human_bytes(static_cast<double>(row.total_bytes)).c_str());
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
    mvprintw(LINES - 1, 0, "q quit  s sort  p/c/m group  a accumulated  h help   drops: map %llu ring %llu",
             static_cast<unsigned long long>(drops.writers_map_full),
             static_cast<unsigned long long>(drops.ringbuf_full));
    refresh();
}

}  // namespace

int run_interactive_top(WriteMonitor &monitor, double refresh_s, TopViewState state, volatile bool *stop)
{
    CursesSession session;
    const auto period = std::chrono::duration<double>(refresh_s);
    auto next_refresh = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(period);
    const std::string hooks(to_string(monitor.tracer().family()));
    WriteReport report = monitor.refresh({state.by, state.accumulated});
    draw(report, state, hooks);
    timeout(100);  // getch waits at most 100 ms: keys stay responsive, events keep draining
    while (!state.quit && !*stop) {
        const int key = getch();
        if (key != ERR) {
            const KeyEffect effect = apply_key(state, key);
            if (state.quit)
                break;
            if (effect == KeyEffect::regroup) {
                // Regroup the data we have now rather than waiting a whole interval.
                report = monitor.refresh({state.by, state.accumulated});
                next_refresh = std::chrono::steady_clock::now() +
                               std::chrono::duration_cast<std::chrono::steady_clock::duration>(period);
            }
            if (effect != KeyEffect::none) {
                if (state.show_help)
                    draw_help();
                else
                    draw(report, state, hooks);
            }
        }
        monitor.pump_events(0);
        if (std::chrono::steady_clock::now() >= next_refresh) {
            report = monitor.refresh({state.by, state.accumulated});
            next_refresh += std::chrono::duration_cast<std::chrono::steady_clock::duration>(period);
            if (state.show_help)
                draw_help();
            else
                draw(report, state, hooks);
        }
        if (key == KEY_RESIZE)
            draw(report, state, hooks);
    }
    return 0;
}

}  // namespace diskwatch
