// Events to standard output, one JSON object per line (the agent's default).
#pragma once

#include "sinks/queued_sink.h"

namespace diskwatch {

class StdoutSink final : public QueuedLineSink {
public:
    StdoutSink();
    ~StdoutSink() override;
    std::string name() const override { return "stdout"; }

private:
    bool write_line(const std::string &line, std::string *error) override;
};

}  // namespace diskwatch
