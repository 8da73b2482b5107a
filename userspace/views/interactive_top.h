// The ncurses live view (`ebpf-diskwatch top` on a terminal).
#pragma once

#include "monitor/report_feed.h"
#include "views/top_state.h"

namespace diskwatch {

// Draws what `feed` gives (top's own programs or a running agent's counters).
// Runs until q (or SIGINT/SIGTERM, via *stop). Returns the exit status.
int run_interactive_top(ReportFeed &feed, double refresh_s, TopViewState state, volatile bool *stop);

}  // namespace diskwatch
