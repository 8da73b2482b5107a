// One clock for the agent's deadlines: seconds on the steady (monotonic)
// clock, which no wall-clock step moves. Throttle ends, kill graces, snoozes
// and evaluations all compare against it.
#pragma once

#include <chrono>

namespace diskwatch {

inline double steady_now_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace diskwatch
