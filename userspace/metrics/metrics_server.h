// `--metrics-listen HOST:PORT`: GET /metrics in the Prometheus text format,
// served by cpp-httplib on its own threads; a scrape renders AgentMetrics at
// that moment. Nothing else is served (404), and nothing is writable.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace httplib {
class Server;
}

namespace diskwatch::metrics {

struct ListenAddress {
    std::string host;  // "127.0.0.1", "0.0.0.0", "::1" (brackets removed)
    uint16_t port = 0;  // 0: any free port (tests)
};

// "HOST:PORT", "[IPV6]:PORT" or ":PORT" (all IPv4 interfaces).
std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string *error);

class MetricsServer {
public:
    using Render = std::function<std::string()>;
    // Binds at once (so that a port in use is an error at start, not later)
    // and serves on a background thread.
    static std::unique_ptr<MetricsServer> start(const ListenAddress &address, const Render &render, std::string *error);
    ~MetricsServer();
    MetricsServer(const MetricsServer &) = delete;
    MetricsServer &operator=(const MetricsServer &) = delete;

    uint16_t port() const { return port_; }
    uint64_t scrapes() const;

private:
    MetricsServer() = default;
    std::unique_ptr<httplib::Server> server_;
    std::thread thread_;
    uint16_t port_ = 0;
    std::shared_ptr<std::atomic<uint64_t>> scrapes_;
    std::atomic<bool> listen_returned_ {false};
};

}  // namespace diskwatch::metrics
