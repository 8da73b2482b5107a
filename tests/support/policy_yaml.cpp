#include "support/policy_yaml.h"

#include <stdexcept>

namespace diskwatch::test {

namespace {

std::string quoted_list(const std::vector<std::string> &values)
{
    std::string list = "[";
    for (size_t i = 0; i < values.size(); ++i) {
        list += i ? ", \"" : "\"";
        for (char c : values[i]) {
            if (c == '"' || c == '\\')
                list += '\\';
            list += c;
        }
        list += '"';
    }
    return list + "]";
}

}  // namespace

PolicyYaml::Rule &PolicyYaml::current()
{
    if (rules_.empty())
        throw std::logic_error("PolicyYaml: rule() first");
    return rules_.back();
}

PolicyYaml &PolicyYaml::interval(const std::string &every)
{
    interval_ = every;
    return *this;
}

PolicyYaml &PolicyYaml::protect_comm(const std::string &comm)
{
    return protect("comm", {comm});
}

PolicyYaml &PolicyYaml::protect(const std::string &key, const std::vector<std::string> &values)
{
    protect_.push_back(key + ": " + quoted_list(values));
    return *this;
}

PolicyYaml &PolicyYaml::rule(const std::string &name)
{
    rules_.push_back({});
    rules_.back().name = name;
    return *this;
}

PolicyYaml &PolicyYaml::cgroup_scope()
{
    current().cgroup_scope = true;
    return *this;
}

PolicyYaml &PolicyYaml::match(const std::string &key, const std::vector<std::string> &values)
{
    current().match.push_back(key + ": " + quoted_list(values));
    return *this;
}

PolicyYaml &PolicyYaml::when(const std::string &write_rate, const std::string &for_duration)
{
    auto &when = current().when;
    when.push_back("write_rate: " + write_rate);
    if (!for_duration.empty())
        when.push_back("for: " + for_duration);
    return *this;
}

PolicyYaml &PolicyYaml::action(const std::string &action)
{
    return set("action", action);
}

PolicyYaml &PolicyYaml::set(const std::string &key, const std::string &value)
{
    current().other.push_back(key + ": " + value);
    return *this;
}

std::string PolicyYaml::str() const
{
    std::string yaml;
    if (!interval_.empty())
        yaml += "interval: " + interval_ + "\n";
    if (!protect_.empty())
        yaml += "protect:\n";
    for (const auto &line : protect_)
        yaml += "  " + line + "\n";
    yaml += rules_.empty() ? "rules: []\n" : "rules:\n";
    const auto block = [&yaml](const char *key, const std::vector<std::string> &lines) {
        if (lines.empty())
            return;
        yaml += std::string("    ") + key + ":\n";
        for (const auto &line : lines)
            yaml += "      " + line + "\n";
    };
    for (const auto &rule : rules_) {
        yaml += "  - name: " + rule.name + "\n";
        if (rule.cgroup_scope)
            yaml += "    scope: cgroup\n";
        block("match", rule.match);
        block("when", rule.when);
        for (const auto &line : rule.other)
            yaml += "    " + line + "\n";
    }
    return yaml;
}

PolicyYaml flood_kill_policy(PolicyYaml policy, const std::string &comm, const std::string &mount,
                             const std::string &grace)
{
    return policy.interval("250ms")
        .rule("flood")
        .match("comm", {comm})
        .match("mount", {mount})
        .when("20MiB/s", "1s")
        .action("kill")
        .set("kill_grace", grace);
}

std::string throttle_policy(const std::string &comm)
{
    return PolicyYaml()
        .interval("250ms")
        .rule("slow-down")
        .match("comm", {comm})
        .when("8MiB/s", "500ms")
        .action("throttle")
        .set("throttle_to", "4MiB/s")
        .set("throttle_for", "1m");
}

}  // namespace diskwatch::test
