// Events to a syslog daemon as RFC 5424 messages (rsyslog, syslog-ng, Fluent
// Bit's syslog input), over a unix datagram socket (/dev/log or a private
// one) or UDP. The JSON line is the MSG; its scalar fields are repeated as
// RFC 5424 structured data ([diskwatch@32473 event="runaway" ...]) so that
// the daemon can filter without a JSON parser. And journald's native protocol
// (/run/systemd/journal/socket) with one DISKWATCH_* field per value.
//
// Datagrams are sent with MSG_DONTWAIT: when the daemon is slow or gone the
// event is dropped and counted; publish() never waits.
#pragma once

#include <cstdint>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "ipc/unix_socket.h"
#include "sinks/event_sink.h"

namespace diskwatch {

struct SyslogTarget {
    enum class Transport { unix_datagram, udp } transport = Transport::unix_datagram;
    std::string path = "/dev/log";  // unix_datagram
    std::string host;               // udp: numeric IPv4 or IPv6 address
    uint16_t port = 514;
};

// "unix:/dev/log", "/dev/log", "udp:127.0.0.1:514", "udp:[::1]:514".
std::optional<SyslogTarget> parse_syslog_target(std::string_view text, std::string *error);

struct SyslogFormat {
    int facility = 3;  // daemon
    std::string app_name = "ebpf-diskwatch";
    std::string hostname;  // empty: the event's "host", else gethostname()
    size_t max_message_bytes = 8192;  // rsyslog's default maxMessageSize
};

// The SD-ID: an enterprise-number form is required for private SD elements
// (RFC 5424 7.2.2); 32473 is the number RFC 5612 reserves for documentation
// and examples, used until the project registers its own.
inline constexpr const char *kSyslogSdId = "diskwatch@32473";

// One RFC 5424 message for an event (`json_line` is also the MSG). When the
// whole would exceed max_message_bytes, MSG is cut (and *truncated set):
// the header and structured data always survive.
std::string format_rfc5424(const Event &event, const SyslogFormat &format, bool *truncated = nullptr);

class SyslogSink final : public EventSink {
public:
    static std::unique_ptr<SyslogSink> open(const SyslogTarget &target, const SyslogFormat &format,
                                            std::string *error);
    void publish(const Event &event) override;
    SinkStats stats() const override;
    std::string name() const override;
    uint64_t truncated() const;

private:
    SyslogSink(const SyslogTarget &target, const SyslogFormat &format) : target_(target), format_(format) {}
    bool connect_socket(std::string *error);  // mutex_ held

    SyslogTarget target_;
    SyslogFormat format_;
    mutable std::mutex mutex_;
    UniqueFd fd_;
    SinkStats stats_;
    uint64_t truncated_ = 0;
};

inline constexpr const char *kJournaldSocket = "/run/systemd/journal/socket";

// True when journald's native socket exists (running under systemd).
bool journald_available(const std::string &socket_path = kJournaldSocket);

// One journal entry in the native protocol: KEY=value lines, the binary
// length-prefixed form for values with a newline.
std::string format_journal_entry(const Event &event, const std::string &identifier);

class JournaldSink final : public EventSink {
public:
    static std::unique_ptr<JournaldSink> open(const std::string &socket_path, const std::string &identifier,
                                              std::string *error);
    void publish(const Event &event) override;
    SinkStats stats() const override;
    std::string name() const override { return "journald:" + socket_path_; }

private:
    JournaldSink(std::string socket_path, std::string identifier)
        : socket_path_(std::move(socket_path)), identifier_(std::move(identifier))
    {
    }
    std::string socket_path_;
    std::string identifier_;
    mutable std::mutex mutex_;
    UniqueFd fd_;
    SinkStats stats_;
};

}  // namespace diskwatch
