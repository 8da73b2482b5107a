#include "metrics/exposition.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace diskwatch::metrics {

std::string escape_label_value(std::string_view value)
{
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out.push_back(c);
    }
    return out;
}

std::string escape_help(std::string_view help)
{
    std::string out;
    for (char c : help) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out.push_back(c);
    }
    return out;
}

std::string format_value(double value)
{
    if (std::isnan(value))
        return "NaN";
    if (std::isinf(value))
        return value > 0 ? "+Inf" : "-Inf";
    // Byte counters go past 2^53 only after 9 PB; below that print exactly.
    if (value == std::floor(value) && std::fabs(value) < 9.007199254740992e15) {
        char text[32];
        std::snprintf(text, sizeof(text), "%.0f", value);
        return text;
    }
    char text[32];
    std::snprintf(text, sizeof(text), "%.17g", value);
    return text;
}

bool valid_metric_name(std::string_view name)
{
    if (name.empty())
        return false;
    for (size_t i = 0; i < name.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(name[i]);
        bool ok = std::isalpha(c) || c == '_' || c == ':' || (i > 0 && std::isdigit(c));
        if (!ok)
            return false;
    }
    return true;
}

bool valid_label_name(std::string_view name)
{
    if (name.empty() || name.rfind("__", 0) == 0)
        return false;
    for (size_t i = 0; i < name.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(name[i]);
        if (!(std::isalpha(c) || c == '_' || (i > 0 && std::isdigit(c))))
            return false;
    }
    return true;
}

std::string render(const std::vector<MetricFamily> &families)
{
    std::string out;
    for (const auto &family : families) {
        if (family.samples.empty())
            continue;
        if (!valid_metric_name(family.name))
            throw std::invalid_argument("invalid metric name: " + family.name);
        out += "# HELP " + family.name + " " + escape_help(family.help) + "\n";
        out += "# TYPE " + family.name + (family.type == MetricType::counter ? " counter\n" : " gauge\n");
        for (const auto &sample : family.samples) {
            out += family.name;
            if (!sample.labels.empty()) {
                out += "{";
                bool first = true;
                for (const auto &[label, value] : sample.labels) {
                    if (!valid_label_name(label))
                        throw std::invalid_argument("invalid label name: " + label + " on " + family.name);
                    if (!first)
                        out += ",";
                    first = false;
                    out += label + "=\"" + escape_label_value(value) + "\"";
                }
                out += "}";
            }
            out += " " + format_value(sample.value) + "\n";
        }
    }
    return out;
}

}  // namespace diskwatch::metrics
