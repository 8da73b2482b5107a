#include "sinks/syslog_sink.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>

#include "sinks/event_fields.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

namespace {

std::string local_hostname()
{
    char name[256] = {};
    if (::gethostname(name, sizeof(name) - 1) != 0)
        return "-";
    return name;
}

// RFC 5424 header fields are PRINTUSASCII (33..126) with a length limit;
// anything else becomes NILVALUE rather than a malformed header.
std::string header_token(std::string_view text, size_t max_length)
{
    if (text.empty() || text.size() > max_length)
        return "-";
    for (unsigned char c : text)
        if (c < 33 || c > 126)
            return "-";
    return std::string(text);
}

bool is_digits(std::string_view text, size_t from, size_t count)
{
    if (from + count > text.size())
        return false;
    for (size_t i = from; i < from + count; ++i)
        if (!std::isdigit(static_cast<unsigned char>(text[i])))
            return false;
    return true;
}

// The event's own RFC 3339 "ts" when it fits RFC 5424's TIMESTAMP (at most
// six fractional digits), so that syslog and the JSON agree to the microsecond.
bool valid_timestamp(std::string_view ts)
{
    if (!(is_digits(ts, 0, 4) && ts.size() > 19 && ts[4] == '-' && is_digits(ts, 5, 2) && ts[7] == '-' &&
          is_digits(ts, 8, 2) && ts[10] == 'T' && is_digits(ts, 11, 2) && ts[13] == ':' && is_digits(ts, 14, 2) &&
          ts[16] == ':' && is_digits(ts, 17, 2)))
        return false;
    size_t i = 19;
    if (ts[i] == '.') {
        size_t digits = 0;
        while (i + 1 + digits < ts.size() && std::isdigit(static_cast<unsigned char>(ts[i + 1 + digits])))
            ++digits;
        if (digits == 0 || digits > 6)
            return false;
        i += 1 + digits;
    }
    std::string_view zone = ts.substr(i);
    return zone == "Z" ||
           (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && is_digits(zone, 1, 2) && zone[3] == ':' &&
            is_digits(zone, 4, 2));
}

std::string now_timestamp()
{
    auto now = std::chrono::system_clock::now();
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
    std::time_t seconds = static_cast<std::time_t>(micros / 1000000);
    std::tm utc {};
    ::gmtime_r(&seconds, &utc);
    char text[80];
    std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<long long>(micros % 1000000));
    return text;
}

// SD-NAME: PRINTUSASCII except '=', ' ', ']', '"'; 1..32 characters.
bool valid_sd_name(std::string_view name)
{
    if (name.empty() || name.size() > 32)
        return false;
    for (unsigned char c : name)
        if (c < 33 || c > 126 || c == '=' || c == ']' || c == '"')
            return false;
    return true;
}

// PARAM-VALUE escapes '"', '\' and ']' with a backslash (RFC 5424 6.3.3).
void append_param_value(std::string &out, std::string_view value)
{
    for (char c : value) {
        if (c == '"' || c == '\\' || c == ']')
            out.push_back('\\');
        out.push_back(c);
    }
}

bool parse_port(std::string_view text, uint16_t *port)
{
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535)
        return false;
    *port = static_cast<uint16_t>(value);
    return true;
}

}  // namespace

std::optional<SyslogTarget> parse_syslog_target(std::string_view text, std::string *error)
{
    SyslogTarget target;
    auto fail = [&](const std::string &why) -> std::optional<SyslogTarget> {
        if (error)
            *error = "syslog target '" + std::string(text) + "': " + why;
        return std::nullopt;
    };
    if (text.rfind("udp:", 0) == 0) {
        std::string_view rest = text.substr(4);
        target.transport = SyslogTarget::Transport::udp;
        size_t colon;
        if (!rest.empty() && rest.front() == '[') {
            size_t close = rest.find(']');
            if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
                return fail("expected udp:[IPV6]:PORT");
            target.host = std::string(rest.substr(1, close - 1));
            colon = close + 1;
        } else {
            colon = rest.rfind(':');
            if (colon == std::string_view::npos)
                return fail("expected udp:HOST:PORT");
            target.host = std::string(rest.substr(0, colon));
        }
        if (!parse_port(rest.substr(colon + 1), &target.port))
            return fail("the port must be 1-65535");
        in6_addr v6;
        in_addr v4;
        if (::inet_pton(AF_INET, target.host.c_str(), &v4) != 1 && ::inet_pton(AF_INET6, target.host.c_str(), &v6) != 1)
            return fail("the host must be a numeric IPv4 or IPv6 address");
        return target;
    }
    std::string_view path = text.rfind("unix:", 0) == 0 ? text.substr(5) : text;
    if (path.empty() || path.front() != '/')
        return fail("expected unix:/ABSOLUTE/PATH or udp:HOST:PORT");
    target.transport = SyslogTarget::Transport::unix_datagram;
    target.path = std::string(path);
    return target;
}

std::string format_rfc5424(const Event &typed, const SyslogFormat &format, bool *truncated)
{
    const std::string_view json_line = typed.line();
    const auto &event = typed.record();
    const int pri = format.facility * 8 + event_severity(typed);

    std::string ts = string_field(event, "ts");
    if (!valid_timestamp(ts))
        ts = now_timestamp();
    std::string host = format.hostname;
    if (host.empty())
        host = string_field(event, "host");
    if (host.empty())
        host = local_hostname();

    std::string message = "<" + std::to_string(pri) + ">1 " + ts + " " + header_token(host, 255) + " " +
                          header_token(format.app_name, 48) + " " + std::to_string(::getpid()) + " " +
                          header_token(event_name(typed), 32) + " ";

    auto fields = flatten_event(event);
    size_t params = 0;
    std::string sd = std::string("[") + kSyslogSdId;
    for (const auto &[name, value] : fields) {
        if (name == "ts" || name == "host" || !valid_sd_name(name))
            continue;  // already in the header, or not expressible as an SD-NAME
        sd += " " + name + "=\"";
        append_param_value(sd, value);
        sd += "\"";
        ++params;
    }
    sd += "]";
    message += params > 0 ? sd : "-";
    message += " ";

    size_t room = format.max_message_bytes > message.size() ? format.max_message_bytes - message.size() : 0;
    if (truncated)
        *truncated = json_line.size() > room;
    message.append(json_line.substr(0, room));
    return message;
}

std::unique_ptr<SyslogSink> SyslogSink::open(const SyslogTarget &target, const SyslogFormat &format,
                                             std::string *error)
{
    std::unique_ptr<SyslogSink> sink(new SyslogSink(target, format));
    std::lock_guard lock(sink->mutex_);
    if (!sink->connect_socket(error))
        return nullptr;
    return sink;
}

bool SyslogSink::connect_socket(std::string *error)
{
    fd_.reset();
    if (target_.transport == SyslogTarget::Transport::unix_datagram) {
        UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        sockaddr_un address {};
        address.sun_family = AF_UNIX;
        if (target_.path.size() >= sizeof(address.sun_path)) {
            if (error)
                *error = "syslog socket path too long: " + target_.path;
            return false;
        }
        std::memcpy(address.sun_path, target_.path.c_str(), target_.path.size() + 1);
        if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr *>(&address), sizeof(address)) != 0) {
            if (error)
                *error = "connect " + target_.path + ": " + errno_text(errno);
            return false;
        }
        fd_ = std::move(fd);
        return true;
    }
    sockaddr_storage storage {};
    socklen_t length = 0;
    int family = AF_INET;
    auto *v4 = reinterpret_cast<sockaddr_in *>(&storage);
    auto *v6 = reinterpret_cast<sockaddr_in6 *>(&storage);
    if (::inet_pton(AF_INET, target_.host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(target_.port);
        length = sizeof(*v4);
    } else if (::inet_pton(AF_INET6, target_.host.c_str(), &v6->sin6_addr) == 1) {
        family = AF_INET6;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(target_.port);
        length = sizeof(*v6);
    } else {
        if (error)
            *error = "syslog host is not a numeric address: " + target_.host;
        return false;
    }
    UniqueFd fd(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr *>(&storage), length) != 0) {
        if (error)
            *error = "connect udp " + target_.host + ":" + std::to_string(target_.port) + ": " + errno_text(errno);
        return false;
    }
    fd_ = std::move(fd);
    return true;
}

void SyslogSink::publish(const Event &event)
{
    bool cut = false;
    const std::string message = format_rfc5424(event, format_, &cut);
    std::lock_guard lock(mutex_);
    ++stats_.published;
    if (cut)
        ++truncated_;
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (!fd_) {
            std::string error;
            if (!connect_socket(&error)) {
                stats_.last_error = error;
                ++stats_.dropped;
                return;
            }
        }
        if (::send(fd_.get(), message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
            ++stats_.delivered;
            return;
        }
        const int err = errno;
        stats_.last_error = std::string("send to syslog: ") + errno_text(err);
        // A restarted daemon (new socket file) or an ICMP port-unreachable from
        // an earlier datagram: reconnect once. A full queue is a drop.
        if (err == ECONNREFUSED || err == ENOTCONN || err == ENOENT || err == EDESTADDRREQ) {
            fd_.reset();
            continue;
        }
        break;
    }
    ++stats_.dropped;
}

SinkStats SyslogSink::stats() const
{
    std::lock_guard lock(mutex_);
    return stats_;
}

uint64_t SyslogSink::truncated() const
{
    std::lock_guard lock(mutex_);
    return truncated_;
}

std::string SyslogSink::name() const
{
    if (target_.transport == SyslogTarget::Transport::udp)
        return "syslog:udp:" + target_.host + ":" + std::to_string(target_.port);
    return "syslog:" + target_.path;
}

// --- journald -----------------------------------------------------------------
//
// The native protocol by hand, not libsystemd's sd_journal_sendv (libsystemd
// is linked for sd_notify: agent/service_manager.cpp), on purpose. From
// systemd's src/libsystemd/sd-journal/journal-send.c (current source; Debian
// 12's libsystemd 252 carries the same hard-coded socket path):
// - sd_journal_sendv sends only to the hard-coded /run/systemd/journal/socket,
//   so tests/ecosystem/test_journald.cpp could not hand it a socket of its own
//   (journald cannot be run privately) and decode what arrives;
// - its socket is blocking and it calls sendmsg without MSG_DONTWAIT, and on
//   EAGAIN/EMSGSIZE it writes the entry to a memfd and sends that: publish()
//   runs on the agent's rule and action path (this sink has no queue of its
//   own, event_sink.h) and must never wait on a stalled journald;
// - it returns 0 when the socket is missing (ENOENT), so an entry lost because
//   journald is gone would be counted as delivered, not dropped.
// The wire format is the one journal-send.c writes (KEY=value\n, or KEY\n,
// a little-endian 64-bit length, the value and \n for a value with a newline).

bool journald_available(const std::string &socket_path)
{
    struct stat info;
    return ::stat(socket_path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode);
}

namespace {

// Journal field names: A-Z, 0-9 and '_', not starting with '_' or a digit,
// at most 64 characters.
std::string journal_field_name(std::string_view dotted)
{
    std::string name = "DISKWATCH_";
    for (char c : dotted) {
        if (std::isalnum(static_cast<unsigned char>(c)))
            name.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
        else
            name.push_back('_');
    }
    if (name.size() > 64)
        name.resize(64);
    return name;
}

void append_field(std::string &out, std::string_view name, std::string_view value)
{
    if (value.find('\n') == std::string_view::npos) {
        out.append(name).append("=").append(value).append("\n");
        return;
    }
    // Binary form: NAME '\n' little-endian uint64 length, value, '\n'.
    out.append(name).append("\n");
    uint64_t length = value.size();
    for (int i = 0; i < 8; ++i)
        out.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
    out.append(value).append("\n");
}

}  // namespace

std::string format_journal_entry(const Event &event, const std::string &identifier)
{
    std::string entry;
    append_field(entry, "MESSAGE", event.line());
    append_field(entry, "PRIORITY", std::to_string(event_severity(event)));
    append_field(entry, "SYSLOG_IDENTIFIER", identifier);
    append_field(entry, "SYSLOG_FACILITY", "3");
    for (const auto &[name, value] : flatten_event(event.record()))
        append_field(entry, journal_field_name(name), value);
    return entry;
}

std::unique_ptr<JournaldSink> JournaldSink::open(const std::string &socket_path, const std::string &identifier,
                                                 std::string *error)
{
    if (!journald_available(socket_path)) {
        if (error)
            *error = socket_path + " is not a socket: journald is not running here";
        return nullptr;
    }
    std::unique_ptr<JournaldSink> sink(new JournaldSink(socket_path, identifier));
    sink->fd_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!sink->fd_) {
        if (error)
            *error = std::string("socket(AF_UNIX, SOCK_DGRAM): ") + errno_text(errno);
        return nullptr;
    }
    return sink;
}

void JournaldSink::publish(const Event &event)
{
    const std::string entry = format_journal_entry(event, identifier_);
    sockaddr_un address {};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, socket_path_.c_str(), std::min(socket_path_.size(), sizeof(address.sun_path) - 1));
    std::lock_guard lock(mutex_);
    ++stats_.published;
    if (::sendto(fd_.get(), entry.data(), entry.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                 reinterpret_cast<sockaddr *>(&address), sizeof(address)) >= 0) {
        ++stats_.delivered;
        return;
    }
    stats_.last_error = "send to journald: " + errno_text(errno);
    ++stats_.dropped;
}

SinkStats JournaldSink::stats() const
{
    std::lock_guard lock(mutex_);
    return stats_;
}

}  // namespace diskwatch
