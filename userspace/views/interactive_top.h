// The ncurses live view (`ebpf-diskwatch top` on a terminal).
#pragma once

#include "monitor/write_monitor.h"
#include "views/top_state.h"

namespace diskwatch {

// Runs until q (or SIGINT/SIGTERM, via *stop). Returns the exit status.
int run_interactive_top(WriteMonitor &monitor, double refresh_s, TopViewState state, volatile bool *stop);

}  // namespace diskwatch
