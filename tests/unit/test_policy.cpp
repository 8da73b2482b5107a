// The policy YAML contract (docs/policy.md): what parses, what is refused,
// and that every refusal names the file, the line and the key.
#include <algorithm>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <catch2/catch.hpp>

#include "rules/policy.h"

using namespace diskwatch;

namespace {

std::string error_of(const std::string &yaml)
{
    std::string error;
    auto policy = parse_policy(yaml, "policy.yaml", &error);
    CHECK_FALSE(policy);
    return error;
}

}  // namespace

TEST_CASE("the issue's example policy parses into its numbers", "[policy]")
{
    const std::string yaml = R"(interval: 250ms
dry_run: false
mounts:
  usage_alert_percent: 80
  eta_alert: 1h
protect:
  comm: [sshd, systemd, dockerd]
  exe: []
  cgroup: []
rules:
  - name: runaway-log-writer
    scope: process
    match:
      comm: ["suricata*"]
      exe: []
      cgroup: ["*docker-*"]
      mount: ["/var/log"]
      uid: []
    when:
      write_rate: 50MiB/s
      for: 2s
      growth_rate: 20MiB/s
      written: 10GiB
      within: 10m
      eta_full: 15m
    action: kill
    kill_grace: 2s
)";
    std::string error;
    auto policy = parse_policy(yaml, "example.yaml", &error);
    INFO(error);
    REQUIRE(policy);
    CHECK(policy->source == "example.yaml");
    CHECK(policy->interval_s == Approx(0.25));
    CHECK_FALSE(policy->dry_run);
    CHECK(policy->mounts.usage_alert_percent == Approx(80));
    CHECK(policy->mounts.eta_alert_s == Approx(3600));
    CHECK(policy->protect.comm == std::vector<std::string>{"sshd", "systemd", "dockerd"});
    REQUIRE(policy->rules.size() == 1);
    const auto &rule = policy->rules[0];
    CHECK(rule.name == "runaway-log-writer");
    CHECK(rule.line == 11);
    CHECK(rule.scope == RuleScope::process);
    CHECK(rule.match.comm == std::vector<std::string>{"suricata*"});
    CHECK(rule.match.mount == std::vector<std::string>{"/var/log"});
    CHECK(*rule.when.write_rate_bps == Approx(50.0 * 1048576));
    CHECK(rule.when.for_s == Approx(2));
    CHECK(*rule.when.growth_rate_bps == Approx(20.0 * 1048576));
    CHECK(*rule.when.written_bytes == 10ull << 30);
    CHECK(rule.when.within_s == Approx(600));
    CHECK(*rule.when.eta_full_s == Approx(900));
    CHECK(rule.action == RuleAction::kill);
    CHECK(rule.kill_grace_s == Approx(2));
}

TEST_CASE("the commented example in the repository is a valid policy", "[policy]")
{
    std::ifstream file(DW_EXAMPLES_DIR "/policy.yaml");
    REQUIRE(file);
    std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    std::string error;
    auto policy = parse_policy(text, "examples/policy.yaml", &error);
    INFO(error);
    REQUIRE(policy);
    CHECK(policy->rules.size() == 3);
    // As shipped it acts on nothing (the package installs it as its policy).
    CHECK(policy->dry_run);
    // It catches Suricata by its real name, and Docker's containers under
    // both cgroup drivers; and it protects what it names, not a directory.
    const auto rule_named = [&](const std::string &name) -> const PolicyRule & {
        for (const auto &rule : policy->rules)
            if (rule.name == name)
                return rule;
        FAIL("no rule " << name);
        return policy->rules.front();
    };
    CHECK(any_glob_matches(rule_named("runaway-log-writer").match.comm, "Suricata-Main"));
    CHECK(any_glob_matches(rule_named("runaway-log-writer").match.comm, "suricata"));
    CHECK_FALSE(any_glob_matches(rule_named("runaway-log-writer").match.comm, "rsyslogd"));
    const auto &containers = rule_named("noisy-container").match.cgroup;
    CHECK(any_glob_matches(containers, "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope"));
    CHECK(any_glob_matches(containers, "/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    CHECK_FALSE(any_glob_matches(containers, "/system.slice/docker.service"));
    CHECK(any_glob_matches(policy->protect.comm, "systemd-journal"));
    CHECK(any_glob_matches(policy->protect.cgroup, "/system.slice/systemd-journald.service"));
    for (const char *daemon : {"/usr/sbin/rsyslogd", "/usr/sbin/nginx", "/usr/sbin/mariadbd"})
        CHECK_FALSE(any_glob_matches(policy->protect.exe, daemon));
}

TEST_CASE("the built-in default policy alerts only", "[policy]")
{
    const Policy policy = default_policy();
    CHECK(policy.rules.empty());
    CHECK_FALSE(policy.dry_run);
    CHECK(policy.mounts.usage_alert_percent == Approx(80));
    CHECK(policy.mounts.eta_alert_s == Approx(3600));
}

TEST_CASE("unknown keys are errors naming file, line and key", "[policy]")
{
    CHECK(error_of("interval: 1s\nintervall: 2s\n") ==
          "policy.yaml:2: intervall: unknown key (expected one of: interval, dry_run, mounts, protect, rules)");
    const std::string typo = "rules:\n  - name: r\n    when:\n      write_rte: 5MiB/s\n";
    CHECK(error_of(typo).rfind("policy.yaml:4: rules.r.when.write_rte: unknown key", 0) == 0);
    CHECK(error_of("mounts:\n  usage_percent: 80\n").rfind("policy.yaml:2: mounts.usage_percent: unknown key", 0) == 0);
    CHECK(error_of("rules:\n  - name: r\n    when: {written: 1GiB}\n    matc: {}\n")
              .rfind("policy.yaml:4: rules.r.matc: unknown key", 0) == 0);
}

TEST_CASE("a syntax error names the line where the problem starts, not where the parser gave up", "[policy]")
{
    // An unclosed flow list: yaml-cpp notices at the end of the file.
    const std::string unclosed = "rules:\n  - name: a\n    when: {written: 1GiB}\n    action: alert\n"
                                 "  - name: b\n    match: {comm: [\"x\", \"y\"}\n    when: {written: 1GiB}\n";
    CHECK(error_of(unclosed).rfind("policy.yaml:6: (syntax): a [ or { opened on this line is never closed", 0) == 0);
    // Brackets inside quotes and comments are not flow collections.
    const std::string quoted = "# a [comment\nrules:\n  - name: \"[x\"\n    when: {written: 1GiB}\n"
                               "    match: {comm: ['{y']}\n  - name: [b\n";
    CHECK(error_of(quoted).rfind("policy.yaml:6: (syntax): a [ or { opened", 0) == 0);
    // Other syntax errors keep yaml-cpp's own line.
    CHECK(error_of("rules:\n  - name: a\n   bad: : x\n").rfind("policy.yaml:", 0) == 0);
}

TEST_CASE("bad values name their key and say what is expected", "[policy]")
{
    CHECK(error_of("interval: fast\n").rfind("policy.yaml:1: interval: \"fast\" is not a duration", 0) == 0);
    CHECK(error_of("dry_run: maybe\n") == "policy.yaml:1: dry_run: \"maybe\" is not true or false");
    CHECK(error_of("rules:\n  - name: r\n    when:\n      write_rate: 50MiB\n")
              .rfind("policy.yaml:4: rules.r.when.write_rate: \"50MiB\" is not a rate", 0) == 0);
    CHECK(error_of("rules:\n  - name: r\n    scope: pod\n    when: {written: 1GiB}\n") ==
          "policy.yaml:3: rules.r.scope: \"pod\" is not process or cgroup");
    CHECK(error_of("rules:\n  - name: r\n    when: {written: 1GiB}\n    action: nuke\n") ==
          "policy.yaml:4: rules.r.action: \"nuke\" is not alert, throttle or kill");
    CHECK(error_of("rules:\n  - name: r\n    when: {written: 1GiB}\n    action: throttle\n")
              .rfind("policy.yaml:4: rules.r.throttle_to: action: throttle needs throttle_to", 0) == 0);
    CHECK(error_of("rules:\n  - name: r\n    when: {}\n").rfind("policy.yaml:3: rules.r.when: needs at least one", 0) == 0);
    CHECK(error_of("rules:\n  - when: {written: 1GiB}\n").rfind("policy.yaml:2: rules[0].name: every rule needs a name", 0) == 0);
    CHECK(error_of("rules:\n  - name: r\n    when: {written: 1GiB}\n  - name: r\n    when: {written: 1GiB}\n")
              .rfind("policy.yaml:4: rules[1].name: duplicate rule name", 0) == 0);
    CHECK(error_of("protect:\n  comm: sshd\n").rfind("policy.yaml:2: protect.comm: must be a list", 0) == 0);
    CHECK(error_of("rules:\n  - name: r\n    when: {written: 1GiB}\n    kill_grace: 1s\n")
              .rfind("policy.yaml:4: rules.r.kill_grace: only applies to action: kill", 0) == 0);
    CHECK(error_of("rules:\n  - name: r\n    when: {eta_full: 1h, for: 2s}\n")
              .rfind("policy.yaml:3: rules.r.when.for: for: only applies", 0) == 0);
}

TEST_CASE("YAML syntax errors name the line", "[policy]")
{
    CHECK(error_of("rules:\n  - name: [unclosed\n").rfind("policy.yaml:", 0) == 0);
}

TEST_CASE("policy files anyone but root could change are refused, naming the reason", "[policy]")
{
    char dir_template[] = "/tmp/dw-policy-XXXXXX";
    REQUIRE(::mkdtemp(dir_template));
    const std::string path = std::string(dir_template) + "/policy.yaml";
    {
        std::ofstream out(path);
        out << "interval: 1s\n";
    }
    std::string error;
    if (::geteuid() == 0) {
        REQUIRE(::chown(path.c_str(), 0, 0) == 0);
        REQUIRE(::chmod(path.c_str(), 0644) == 0);
        CHECK(load_policy_file(path, &error));
        REQUIRE(::chmod(path.c_str(), 0664) == 0);
        CHECK_FALSE(load_policy_file(path, &error));
        CHECK(error == path + ": refused: writable by its group (chmod go-w " + path + ")");
        REQUIRE(::chmod(path.c_str(), 0646) == 0);
        CHECK_FALSE(load_policy_file(path, &error));
        CHECK(error.find("writable by everyone") != std::string::npos);
        REQUIRE(::chmod(path.c_str(), 0644) == 0);
        REQUIRE(::chown(path.c_str(), 65534, 0) == 0);
        CHECK_FALSE(load_policy_file(path, &error));
        CHECK(error == path + ": refused: owned by uid 65534, not root (chown root " + path + ")");
    } else {
        CHECK_FALSE(load_policy_file(path, &error));
        CHECK(error.find("not root") != std::string::npos);
    }
    CHECK_FALSE(load_policy_file(std::string(dir_template) + "/missing.yaml", &error));
    CHECK(error.find("cannot open") != std::string::npos);
    ::unlink(path.c_str());
    ::rmdir(dir_template);
}

TEST_CASE("globs match comm, exe and paths", "[policy]")
{
    CHECK(glob_matches("suricata*", "suricata-main"));
    CHECK_FALSE(glob_matches("suricata*", "xsuricata"));
    CHECK(glob_matches("*docker-*", "/system.slice/docker-abc.scope"));
    CHECK(any_glob_matches({"a", "b?"}, "bc"));
    // Case-sensitive unless "(?i)" leads.
    CHECK_FALSE(glob_matches("suricata*", "Suricata-Main"));
    CHECK(glob_matches("(?i)suricata*", "Suricata-Main"));
    CHECK(glob_matches("(?i)SURICATA*", "suricata"));
    CHECK(glob_matches("(?i)*journal*", "systemd-Journal"));
    CHECK_FALSE(glob_matches("(?i)suricata*", "xsuricata"));
    CHECK_FALSE(glob_matches("x(?i)suricata", "x(?i)Suricata"));  // only in front
}

TEST_CASE("a key given twice is an error naming both lines (YAML would keep one)", "[policy]")
{
    CHECK(error_of("dry_run: true\ndry_run: false\n") ==
          "policy.yaml:2: dry_run: given twice (first at line 1): YAML would keep one and silently drop the other");
    CHECK(error_of("rules:\n  - name: r\n    action: kill\n    when: {written: 1GiB}\n    action: alert\n")
              .rfind("policy.yaml:5: rules.r.action: given twice (first at line 3)", 0) == 0);
    CHECK(error_of("rules:\n  - name: r\n    when:\n      written: 1GiB\n      written: 2GiB\n")
              .rfind("policy.yaml:5: rules.r.when.written: given twice (first at line 4)", 0) == 0);
    CHECK(error_of("protect:\n  comm: [a]\n  comm: [b]\n").rfind("policy.yaml:3: protect.comm: given twice", 0) == 0);
    CHECK(error_of("rules:\n  - name: r\n    when: {written: 1GiB}\n    match: {comm: [a], comm: [b]}\n")
              .rfind("policy.yaml:4: rules.r.match.comm: given twice", 0) == 0);
}

TEST_CASE("a huge policy value is cut in the error, not echoed whole", "[policy]")
{
    const std::string huge(5 << 20, '7');
    // Values the parser echoes: cut, saying how long they were.
    for (const std::string &yaml : {"interval: " + huge + "x\n",
                                    "rules:\n  - name: a\n    when:\n      write_rate: \"" + huge + "XB/s\"\n"}) {
        const std::string error = error_of(yaml);
        INFO(error.substr(0, 300));
        CHECK(error.rfind("policy.yaml:", 0) == 0);
        CHECK(error.size() < 1200);
        CHECK(error.find("bytes)") != std::string::npos);
    }
    // A huge key is a syntax error (YAML's implicit keys stop at 1024 characters): short all the same.
    const std::string error = error_of("rules:\n  - name: a\n    " + huge + ": 1\n");
    INFO(error.substr(0, 300));
    CHECK(error.rfind("policy.yaml:", 0) == 0);
    CHECK(error.size() < 1200);
}

TEST_CASE("check-config's warnings: claimable protection, kills without a window or a selector, rules that never "
          "fire or never slow",
          "[policy]")
{
    std::string error;
    auto policy = parse_policy("protect:\n  comm: [postgres]\n"
                               "rules:\n"
                               "  - name: k\n    match: {mount: [\"/nope*\"]}\n    when: {write_rate: 1MiB/s}\n    action: kill\n"
                               "  - name: t\n    match: {comm: [x]}\n    when: {write_rate: 1MiB/s, for: 1s}\n"
                               "    action: throttle\n    throttle_to: 2MiB/s\n"
                               "  - name: fine\n    match: {comm: [y], mount: [\"/\"]}\n    when: {write_rate: 1MiB/s, for: 2s}\n"
                               "    action: kill\n",
                               "policy.yaml", &error);
    INFO(error);
    REQUIRE(policy);
    const auto warnings = policy_warnings(*policy, {"/", "/boot"});
    const auto said = [&](const std::string &start) {
        return std::count_if(warnings.begin(), warnings.end(),
                             [&](const std::string &warning) { return warning.rfind(start, 0) == 0; });
    };
    CHECK(said("protect.comm: any process can take any name") == 1);
    CHECK(said("rules.k: kills on one evaluation's rate (no `for`)") == 1);
    CHECK(said("rules.k: kills whatever matches its mounts") == 1);
    CHECK(said("rules.k.match.mount: matches no mount point here") == 1);
    CHECK(said("rules.t.throttle_to: at or above the rule's own write_rate") == 1);
    CHECK(said("rules.fine") == 0);
    CHECK(warnings.size() == 5);
    // Without the host's mount points, the mount check is not made.
    CHECK(policy_warnings(*policy, {}).size() == 4);
}
