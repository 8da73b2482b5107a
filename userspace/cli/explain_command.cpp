#include "cli/explain_command.h"

#include <chrono>
#include <cstdio>
#include <iostream>

#include "control/control_client.h"
#include "control/control_protocol.h"
#include "recorder/explain.h"
#include "recorder/flight_recorder.h"
#include "recorder/history.h"
#include "vocabulary/exit_codes.h"

namespace diskwatch {

std::string recorder_to_read(const std::string &given, const std::string &control_socket)
{
    if (!given.empty())
        return given;
    std::string error;
    const auto status = control::send_request(control_socket.empty() ? control::kDefaultSocketPath : control_socket,
                                              control::status_request(), std::chrono::seconds(2), &error);
    if (status && status->value("ok", false)) {
        const auto recorder = status->find("recorder");
        if (recorder != status->end() && recorder->is_object() && recorder->contains("dir") &&
            (*recorder)["dir"].is_string())
            return (*recorder)["dir"].get<std::string>();
    }
    return recorder_dir(RecorderSettings {});
}

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
    options.recorder_dir = recorder_to_read(command.recorder, command.control_socket);
    options.mount = command.mount;
    options.since_s = *since;
    options.now_s = now_s;
    options.top = command.top;
    const auto answer = explain(options, &error);
    if (!answer) {
        std::cerr << "ebpf-diskwatch explain: " << error << "\n";
        return kExitFailure;
    }
    // Free text (advice) carries names as they are: a name that is not UTF-8
    // shows U+FFFD there; the name fields carry its exact bytes in <key>_b64.
    const std::string out = command.json ? answer->dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n"
                                         : explain_text(*answer);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    return kExitOk;
}

}  // namespace diskwatch
