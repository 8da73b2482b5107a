#include "cli/explain_command.h"

#include <chrono>
#include <cstdio>
#include <iostream>

#include "recorder/explain.h"
#include "recorder/flight_recorder.h"
#include "recorder/history.h"
#include "vocabulary/exit_codes.h"

namespace diskwatch {

int run_explain(const ExplainCommand &command)
{
    const double now_s = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    std::string error;
    const auto since = parse_when(command.since, now_s, &error);
    if (!since) {
        std::cerr << "ebpf-diskwatch explain: --since " << error << "\n";
        return kExitUsage;
    }
    ExplainOptions options;
    options.recorder_dir = command.recorder.empty() ? recorder_dir(RecorderSettings {}) : command.recorder;
    options.mount = command.mount;
    options.since_s = *since;
    options.now_s = now_s;
    options.top = command.top;
    const auto answer = explain(options, &error);
    if (!answer) {
        std::cerr << "ebpf-diskwatch explain: " << error << "\n";
        return kExitFailure;
    }
    const std::string out = command.json ? answer->dump() + "\n" : explain_text(*answer);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    return kExitOk;
}

}  // namespace diskwatch
