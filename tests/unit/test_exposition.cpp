// The Prometheus text format writer (docs/metrics.md): escaping and layout.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "metrics/exposition.h"
#include "metrics/metrics_server.h"

using namespace diskwatch::metrics;

TEST_CASE("label values escape backslash, double quote and line feed", "[metrics]")
{
    CHECK(escape_label_value("/var/log") == "/var/log");
    CHECK(escape_label_value("a\\b") == "a\\\\b");
    CHECK(escape_label_value("say \"hi\"") == "say \\\"hi\\\"");
    CHECK(escape_label_value("two\nlines") == "two\\nlines");
    CHECK(escape_help("c:\\ and\nmore \"quotes\"") == "c:\\\\ and\\nmore \"quotes\"");
}

TEST_CASE("values print as Prometheus reads them", "[metrics]")
{
    CHECK(format_value(0) == "0");
    CHECK(format_value(68719476736.0) == "68719476736");
    CHECK(format_value(0.25) == "0.25");
    CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
    CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
    CHECK(format_value(std::nan("")) == "NaN");
}

TEST_CASE("render writes HELP, TYPE and one line per sample, and skips empty families", "[metrics]")
{
    std::vector<MetricFamily> families {
        {"ebpf_diskwatch_mount_written_bytes_total", "Bytes written.\nPer mount.", MetricType::counter,
         {{{{"mountpoint", "/mnt/\"odd\""}, {"device", "7:0"}}, 1048576}}},
        {"ebpf_diskwatch_mount_eta_full_seconds", "ETA.", MetricType::gauge, {}},
        {"ebpf_diskwatch_process_resident_memory_bytes", "RSS.", MetricType::gauge, {{{}, 123}}},
    };
    CHECK(render(families) ==
          "# HELP ebpf_diskwatch_mount_written_bytes_total Bytes written.\\nPer mount.\n"
          "# TYPE ebpf_diskwatch_mount_written_bytes_total counter\n"
          "ebpf_diskwatch_mount_written_bytes_total{mountpoint=\"/mnt/\\\"odd\\\"\",device=\"7:0\"} 1048576\n"
          "# HELP ebpf_diskwatch_process_resident_memory_bytes RSS.\n"
          "# TYPE ebpf_diskwatch_process_resident_memory_bytes gauge\n"
          "ebpf_diskwatch_process_resident_memory_bytes 123\n");
}

TEST_CASE("invalid metric and label names are refused, not rendered", "[metrics]")
{
    CHECK(valid_metric_name("ebpf_diskwatch_x:y_total"));
    CHECK_FALSE(valid_metric_name("1abc"));
    CHECK_FALSE(valid_metric_name("has-dash"));
    CHECK(valid_label_name("mountpoint"));
    CHECK_FALSE(valid_label_name("__reserved"));
    CHECK_FALSE(valid_label_name("with.dot"));
    CHECK_THROWS(render({{"bad-name", "x", MetricType::gauge, {{{}, 1}}}}));
    CHECK_THROWS(render({{"good", "x", MetricType::gauge, {{{{"bad label", "v"}}, 1}}}}));
}

TEST_CASE("metrics listen addresses (--metrics-listen HOST:PORT)", "[metrics][cli]")
{
    std::string error;
    auto v4 = parse_listen_address("127.0.0.1:9863", &error);
    REQUIRE(v4);
    CHECK(v4->host == "127.0.0.1");
    CHECK(v4->port == 9863);
    auto any = parse_listen_address(":9863", &error);
    REQUIRE(any);
    CHECK(any->host == "0.0.0.0");
    auto v6 = parse_listen_address("[::1]:0", &error);
    REQUIRE(v6);
    CHECK(v6->host == "::1");
    CHECK(v6->port == 0);
    CHECK_FALSE(parse_listen_address("localhost", &error));
    CHECK_THAT(error, Catch::Contains("HOST:PORT"));
    CHECK_FALSE(parse_listen_address("127.0.0.1:70000", &error));
    CHECK_THAT(error, Catch::Contains("port"));
    CHECK_FALSE(parse_listen_address("::1:80", &error));
    CHECK_THAT(error, Catch::Contains("brackets"));
}
