// The Prometheus text exposition format (version 0.0.4): metric families with
// HELP and TYPE, samples with escaped label values. Pure: no I/O, no state.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace diskwatch::metrics {

enum class MetricType { counter, gauge };

using Labels = std::vector<std::pair<std::string, std::string>>;

struct Sample {
    Labels labels;
    double value = 0;
};

struct MetricFamily {
    std::string name;  // ebpf_diskwatch_..., [a-zA-Z_:][a-zA-Z0-9_:]*
    std::string help;
    MetricType type = MetricType::gauge;
    std::vector<Sample> samples;
};

// Label values: backslash, double quote and line feed are escaped.
std::string escape_label_value(std::string_view value);
// HELP text: backslash and line feed are escaped.
std::string escape_help(std::string_view help);
// Numbers as Prometheus reads them: integers without exponent, +Inf/-Inf/NaN.
std::string format_value(double value);
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);

// Families with no samples are left out (a HELP/TYPE without samples is
// legal but noise). Throws std::invalid_argument on an invalid name.
std::string render(const std::vector<MetricFamily> &families);

inline constexpr const char *kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace diskwatch::metrics
