#include "cli/log_setup.h"

#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "views/format.h"

namespace diskwatch {

namespace {

class TerminalSafeSink final : public spdlog::sinks::sink {
public:
    explicit TerminalSafeSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}

    void log(const spdlog::details::log_msg &message) override
    {
        const std::string safe = terminal_safe(std::string_view(message.payload.data(), message.payload.size()));
        spdlog::details::log_msg copy(message);
        copy.payload = spdlog::string_view_t(safe.data(), safe.size());
        inner_->log(copy);
    }
    void flush() override { inner_->flush(); }
    void set_pattern(const std::string &pattern) override { inner_->set_pattern(pattern); }
    void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override
    {
        inner_->set_formatter(std::move(formatter));
    }

private:
    std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace

std::shared_ptr<spdlog::sinks::sink> terminal_safe_sink(std::shared_ptr<spdlog::sinks::sink> inner)
{
    return std::make_shared<TerminalSafeSink>(std::move(inner));
}

void setup_logging(bool verbose)
{
    auto sink = terminal_safe_sink(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    auto logger = std::make_shared<spdlog::logger>("ebpf-diskwatch", std::move(sink));
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::info);
}

}  // namespace diskwatch
