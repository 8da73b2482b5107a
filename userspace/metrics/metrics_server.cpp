#include "metrics/metrics_server.h"

#include <sys/socket.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <stdexcept>

#include <httplib.h>

#include "vocabulary/internal_errors.h"
#include "metrics/exposition.h"

namespace diskwatch::metrics {

std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string *error)
{
    auto fail = [&](const std::string &why) -> std::optional<ListenAddress> {
        if (error)
            *error = "--metrics-listen '" + std::string(text) + "': " + why;
        return std::nullopt;
    };
    ListenAddress address;
    size_t colon;
    if (!text.empty() && text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return fail("expected [IPV6]:PORT");
        address.host = std::string(text.substr(1, close - 1));
        colon = close + 1;
    } else {
        colon = text.rfind(':');
        if (colon == std::string_view::npos)
            return fail("expected HOST:PORT");
        address.host = std::string(text.substr(0, colon));
        if (address.host.find(':') != std::string::npos)
            return fail("write an IPv6 address in brackets: [::1]:PORT");
    }
    if (address.host.empty())
        address.host = "0.0.0.0";
    std::string_view port_text = text.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535)
        return fail("the port must be 0-65535");
    address.port = static_cast<uint16_t>(port);
    return address;
}

std::unique_ptr<MetricsServer> MetricsServer::start(const ListenAddress &address, const Render &render, std::string *error)
{
    std::unique_ptr<MetricsServer> server(new MetricsServer());
    server->server_ = std::make_unique<httplib::Server>();
    server->scrapes_ = std::make_shared<std::atomic<uint64_t>>(0);
    auto &http = *server->server_;
    // Two workers: scrapes are rare and cheap; the default pool is sized for
    // a web server, not for a monitor that must stay small.
    http.new_task_queue = [] { return new httplib::ThreadPool(2); };
    // httplib's default adds SO_REUSEPORT, which would let a second agent
    // bind the same port and split the scrapes between them. Keep only
    // SO_REUSEADDR (a restart may rebind while old connections linger).
    http.set_socket_options([](socket_t sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    http.set_read_timeout(5, 0);
    http.set_write_timeout(5, 0);
    http.set_keep_alive_max_count(10);
    http.Get("/metrics", [render, scrapes = server->scrapes_](const httplib::Request &, httplib::Response &response) {
        try {
            response.set_content(render(), kContentType);
            ++*scrapes;
        } catch (const std::exception &e) {
            response.status = 500;
            response.set_content(std::string("rendering metrics failed: ") + e.what() + "\n", "text/plain");
        }
    });
    http.Get("/", [](const httplib::Request &, httplib::Response &response) {
        response.set_content("ebpf-diskwatch: metrics at /metrics\n", "text/plain");
    });

    int port = address.port == 0 ? http.bind_to_any_port(address.host)
                                 : (http.bind_to_port(address.host, address.port) ? address.port : -1);
    if (port <= 0) {
        if (error)
            *error = "cannot listen on " + address.host + ":" + std::to_string(address.port) +
                     " for metrics (address in use, or not an address of this host)";
        return nullptr;
    }
    server->port_ = static_cast<uint16_t>(port);
    server->thread_ = std::thread([&http, raw = server.get()] {
        catch_at_boundary("metrics server", [&http] { http.listen_after_bind(); });
        raw->listen_returned_ = true;
    });
    return server;
}

MetricsServer::~MetricsServer()
{
    // stop() only ends a listen loop that has started: wait for it first.
    while (thread_.joinable() && !listen_returned_ && !server_->is_running())
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (server_)
        server_->stop();
    if (thread_.joinable())
        thread_.join();
}

uint64_t MetricsServer::scrapes() const
{
    return scrapes_ ? scrapes_->load() : 0;
}

}  // namespace diskwatch::metrics
