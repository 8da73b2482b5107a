// The stderr logger (userspace/cli/log_setup.h): names any user controls reach
// log lines ("cannot kill ... pid N is ..."): escaped, never raw.
#include <catch2/catch.hpp>

#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "cli/log_setup.h"

using namespace diskwatch;

TEST_CASE("a hostile name in a log message drives no terminal and forges no line", "[logging][security]")
{
    std::ostringstream out;
    auto inner = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    spdlog::logger logger("test", terminal_safe_sink(inner));
    logger.set_pattern("%l %v");
    logger.warn("cannot kill pid 7: {}", std::string("dw\x1b[2J\nwarning forged line\x9b" "1m\x07"));
    const std::string line = out.str();
    INFO(line);
    CHECK(line.find('\x1b') == std::string::npos);
    CHECK(line.find('\x07') == std::string::npos);
    CHECK(line.find('\x9b') == std::string::npos);
    CHECK(line.find('\n') == line.size() - 1);  // one line: only the logger's own newline
    CHECK(line.find("\\x1b[2J\\x0awarning forged line") != std::string::npos);
}
