// `top --replay WHEN`: the live view over the flight record instead of the
// kernel. Each refresh is one recorded window, in the grouping asked for;
// the view steps through them with keys ([ and ], or the arrows left and
// right; space plays them at the refresh rate).
#pragma once

#include <memory>
#include <string>

#include "monitor/report_feed.h"
#include "recorder/history.h"

namespace diskwatch {

class ReplayFeed : public ReportFeed {
public:
    // The windows around `at` (unix seconds): from kReplayBeforeS before it
    // to kReplayAfterS after. nullptr with *error when the record has none
    // there (what it does hold is said).
    static std::unique_ptr<ReplayFeed> open(const std::string &dir, double at_s, std::string *error);

    void wait(int timeout_ms) override;
    std::optional<WriteReport> refresh(const ReportOptions &options, std::string *error) override;
    ReportSource source() const override { return ReportSource::replay; }
    std::string describe() const override;
    std::optional<std::string> act(const OperatorAction &action, std::string *error) override;
    bool step(int windows) override;
    bool replaying() const override { return true; }

    const History &history() const { return history_; }
    size_t position() const { return position_; }

    static constexpr double kReplayBeforeS = 3600;
    static constexpr double kReplayAfterS = 24 * 3600;

private:
    History history_;
    size_t position_ = 0;
    std::string dir_;
};

}  // namespace diskwatch
