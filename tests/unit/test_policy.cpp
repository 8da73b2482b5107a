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

// A policy that must parse (the error is the failure's message otherwise).
Policy parsed_ok(const std::string &yaml)
{
    std::string error;
    auto policy = parse_policy(yaml, "policy.yaml", &error);
    INFO(error);
    REQUIRE(policy);
    return *policy;
}

// The start of a rule that parses, for tests of its other keys.
const std::string kOneRule = "rules:\n  - name: r\n    when: {written: 1GiB}\n";

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
    // The flat form: any of its conditions, the rates sharing one `for`.
    CHECK(rule.when.all.empty());
    REQUIRE(rule.when.any.size() == 4);
    CHECK(rule.when.any[0].kind == Condition::Kind::write_rate);
    CHECK(rule.when.any[0].threshold == Approx(50.0 * 1048576));
    CHECK(rule.when.any[0].window_s == Approx(2));
    CHECK(rule.when.any[1].kind == Condition::Kind::growth_rate);
    CHECK(rule.when.any[1].threshold == Approx(20.0 * 1048576));
    CHECK(rule.when.any[1].window_s == Approx(2));
    CHECK(rule.when.any[2].kind == Condition::Kind::written);
    CHECK(rule.when.any[2].threshold == Approx(10.0 * (1ull << 30)));
    CHECK(rule.when.any[2].window_s == Approx(600));
    CHECK(rule.when.any[3].kind == Condition::Kind::eta_full);
    CHECK(rule.when.any[3].threshold == Approx(900));
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
          "policy.yaml:2: intervall: unknown key (expected one of: interval, dry_run, mounts, protect, safety, recorder, rules)");
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
    CHECK(error_of("rules:\n  - name: requested from top\n    when: {written: 1GiB}\n")
              .rfind("policy.yaml:2: rules[0].name: \"requested from top\" is the name of what an operator asks", 0) == 0);
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

TEST_CASE("when takes any: and all: lists, one condition per item, each with its own window", "[policy]")
{
    const std::string yaml = R"(rules:
  - name: full-and-fast
    when:
      all:
        - write_rate: 50MiB/s
          for: 2s
        - mount_usage_percent: 90
      any:
        - written: 1GiB
          within: 1m
        - growth_rate: 10MiB/s
    action: alert
)";
    std::string error;
    const auto policy = parse_policy(yaml, "policy.yaml", &error);
    INFO(error);
    REQUIRE(policy);
    const auto &when = policy->rules.at(0).when;
    REQUIRE(when.all.size() == 2);
    CHECK(when.all[0].kind == Condition::Kind::write_rate);
    CHECK(when.all[0].threshold == Approx(50.0 * 1048576));
    CHECK(when.all[0].window_s == Approx(2));
    CHECK(when.all[1].kind == Condition::Kind::mount_usage);
    CHECK(when.all[1].threshold == Approx(90));
    REQUIRE(when.any.size() == 2);
    CHECK(when.any[0].kind == Condition::Kind::written);
    CHECK(when.any[0].window_s == Approx(60));
    CHECK(when.any[1].kind == Condition::Kind::growth_rate);
    CHECK(when.any[1].window_s == 0);  // its own: no `for` given
    CHECK(when.longest_for_s() == Approx(2));
    CHECK(when.longest_window_s() == Approx(60));

    // The flat form may name mount_usage_percent too (any of them).
    const auto flat = parse_policy("rules:\n  - name: r\n    when: {mount_usage_percent: 95}\n", "p.yaml", &error);
    REQUIRE(flat);
    REQUIRE(flat->rules[0].when.any.size() == 1);
    CHECK(flat->rules[0].when.any[0].kind == Condition::Kind::mount_usage);
}

TEST_CASE("any: and all: mistakes name the file, the line and the item's key", "[policy]")
{
    const std::string rule = "rules:\n  - name: r\n    when:\n";
    // Two conditions in one item: which of them goes with its `for` is not for us to guess.
    CHECK_THAT(error_of(rule + "      all:\n        - write_rate: 5MiB/s\n          written: 1GiB\n"),
               Catch::StartsWith("policy.yaml:5: rules.r.when.all[0]: one condition per list item"));
    CHECK_THAT(error_of(rule + "      all:\n        - write_rate: 5MiB/s\n        - for: 2s\n"),
               Catch::StartsWith("policy.yaml:6: rules.r.when.all[1].for: for: only applies to write_rate or growth_rate"));
    CHECK_THAT(error_of(rule + "      any:\n        - written: 1GiB\n          within: soon\n"),
               Catch::StartsWith("policy.yaml:6: rules.r.when.any[0].within: \"soon\" is not a duration"));
    CHECK_THAT(error_of(rule + "      any:\n        - write_rte: 5MiB/s\n"),
               Catch::StartsWith("policy.yaml:5: rules.r.when.any[0].write_rte: unknown key"));
    CHECK_THAT(error_of(rule + "      all: []\n"),
               Catch::StartsWith("policy.yaml:4: rules.r.when.all: must be a list of conditions"));
    CHECK_THAT(error_of(rule + "      all: {write_rate: 5MiB/s}\n"),
               Catch::StartsWith("policy.yaml:4: rules.r.when.all: must be a list of conditions"));
    // The flat keys and the lists do not mix (which would be ANDed with which?).
    CHECK_THAT(error_of(rule + "      write_rate: 5MiB/s\n      all:\n        - mount_usage_percent: 90\n"),
               Catch::StartsWith("policy.yaml:4: rules.r.when.write_rate: unknown key (expected one of: any, all)"));
    CHECK_THAT(error_of(rule + "      all:\n        - mount_usage_percent: 190\n"),
               Catch::StartsWith("policy.yaml:5: rules.r.when.all[0].mount_usage_percent: must be in (0, 100]"));
    CHECK_THAT(error_of(rule + "      all:\n        - {}\n"),
               Catch::StartsWith("policy.yaml:5: rules.r.when.all[0]: needs at least one of"));
    CHECK_THAT(error_of(rule + "      all:\n        - write_rate: 1MiB/s\n        - write_rate: 2MiB/s\n"
                          "      all:\n        - eta_full: 1h\n"),
               Catch::StartsWith("policy.yaml:7: rules.r.when.all: given twice (first at line 4)"));
}

TEST_CASE("safety: its defaults, its keys, and mistakes named by file, line and key", "[policy][safety]")
{
    const Policy defaults = parsed_ok("rules: []\n");
    CHECK(defaults.safety.action_delay_s == 1);
    CHECK(defaults.safety.kill_limit == 10);
    CHECK(defaults.safety.kill_window_s == 60);
    CHECK(defaults.safety.recheck_before_sigkill);
    const Policy given =
        parsed_ok("safety:\n  action_delay: 10s\n  kill_limit: 0\n  kill_window: 5m\n  recheck_before_sigkill: false\n");
    CHECK(given.safety.action_delay_s == 10);
    CHECK(given.safety.kill_limit == 0);
    CHECK(given.safety.kill_window_s == 300);
    CHECK_FALSE(given.safety.recheck_before_sigkill);
    CHECK_THAT(error_of("safety:\n  kill_limit: -1\n"),
               Catch::StartsWith("policy.yaml:2: safety.kill_limit: \"-1\" is not a whole number"));
    CHECK(error_of("safety:\n  kill_window: 0s\n") == "policy.yaml:2: safety.kill_window: must be more than 0");
    CHECK_THAT(error_of("safety:\n  delay: 1s\n"), Catch::StartsWith("policy.yaml:2: safety.delay: unknown key"));
}

TEST_CASE("pre_kill is an argv list with an absolute program, for kill rules, with a bounded timeout",
          "[policy][safety]")
{
    const std::string &head = kOneRule;
    const Policy policy =
        parsed_ok(head + "    action: kill\n    pre_kill: [/usr/local/bin/save-logs, --last, \"100\"]\n    pre_kill_timeout: 10s\n");
    CHECK(policy.rules[0].pre_kill == std::vector<std::string>{"/usr/local/bin/save-logs", "--last", "100"});
    CHECK(policy.rules[0].pre_kill_timeout_s == 10);
    const Policy defaults = parsed_ok(head + "    action: kill\n");
    CHECK(defaults.rules[0].pre_kill.empty());
    CHECK(defaults.rules[0].pre_kill_timeout_s == 5);
    CHECK_THAT(error_of(head + "    action: kill\n    pre_kill: [save-logs]\n"),
               Catch::StartsWith("policy.yaml:5: rules.r.pre_kill[0]: \"save-logs\": the program must be an absolute path"));
    CHECK_THAT(error_of(head + "    action: kill\n    pre_kill: /bin/true\n"),
               Catch::StartsWith("policy.yaml:5: rules.r.pre_kill: must be a list"));
    CHECK_THAT(error_of(head + "    action: kill\n    pre_kill_timeout: 2m\n"),
               Catch::StartsWith("policy.yaml:5: rules.r.pre_kill_timeout: must be more than 0 and at most 60s"));
    CHECK_THAT(error_of(head + "    action: alert\n    pre_kill: [/bin/true]\n"),
               Catch::StartsWith("policy.yaml:5: rules.r.pre_kill: only applies to action: kill"));
}

TEST_CASE("escalate_after is for throttle rules, shorter than throttle_for, and lets them set a kill's keys",
          "[policy][safety]")
{
    const std::string &head = kOneRule;
    const Policy policy = parsed_ok(head + "    action: throttle\n    throttle_to: 1MiB/s\n    escalate_after: 2m\n"
                                           "    kill_grace: 5s\n    pre_kill: [/usr/bin/true]\n");
    CHECK(policy.rules[0].escalate_after_s == 120);
    CHECK(policy.rules[0].kill_grace_s == 5);
    CHECK_THAT(error_of(head + "    action: kill\n    escalate_after: 2m\n"),
               Catch::StartsWith("policy.yaml:5: rules.r.escalate_after: only applies to action: throttle"));
    CHECK_THAT(error_of(head + "    action: throttle\n    throttle_to: 1MiB/s\n    throttle_for: 1m\n    escalate_after: 2m\n"),
               Catch::StartsWith("policy.yaml:7: rules.r.escalate_after: must be more than 0 and less than throttle_for"));
    CHECK_THAT(error_of(head + "    action: throttle\n    throttle_to: 1MiB/s\n    kill_grace: 5s\n"),
               Catch::StartsWith("policy.yaml:6: rules.r.kill_grace: only applies to action: kill (or a throttle with escalate_after)"));
}

TEST_CASE("prefer, avoid and omit are globs of a cgroup rule", "[policy][safety]")
{
    const Policy policy = parsed_ok(kOneRule + "    scope: cgroup\n    prefer: [\"/batch.slice/*\"]\n    avoid: [\"/system.slice/*\"]\n"
                                               "    omit: [\"/system.slice/postgresql.service\"]\n");
    CHECK(policy.rules[0].prefer == std::vector<std::string>{"/batch.slice/*"});
    CHECK(policy.rules[0].avoid == std::vector<std::string>{"/system.slice/*"});
    CHECK(policy.rules[0].omit == std::vector<std::string>{"/system.slice/postgresql.service"});
    CHECK_THAT(error_of(kOneRule + "    omit: [\"/x\"]\n"),
               Catch::StartsWith("policy.yaml:4: rules.r.omit: only applies to scope: cgroup"));
}

TEST_CASE("check-config warns of a selector that matches everything and of a written no watched filesystem holds",
          "[policy]")
{
    CHECK(glob_matches_everything("*"));
    CHECK(glob_matches_everything("**"));
    CHECK(glob_matches_everything("(?i)*"));
    CHECK(glob_matches_everything("/*"));
    CHECK_FALSE(glob_matches_everything("/"));
    CHECK_FALSE(glob_matches_everything("*d"));
    CHECK_FALSE(glob_matches_everything("/var/*"));
    std::string error;
    auto policy = parse_policy("protect:\n  cgroup: [\"/*\"]\n"
                               "rules:\n"
                               "  - name: wide\n    match: {comm: [\"*\"], mount: [\"/data\"]}\n"
                               "    when: {written: 2GiB, within: 1h}\n"
                               "  - name: fits\n    match: {comm: [x], mount: [\"/big\"]}\n    when: {written: 2GiB}\n"
                               "  - name: lists\n    match: {comm: [y]}\n    when: {all: [{written: 8GiB}, {eta_full: 1h}]}\n",
                               "policy.yaml", &error);
    INFO(error);
    REQUIRE(policy);
    const std::map<std::string, uint64_t> sizes = {{"/", 4ull << 30}, {"/data", 1ull << 30}, {"/big", 16ull << 30}};
    const auto warnings = policy_warnings(*policy, {"/", "/data", "/big"}, sizes);
    const auto said = [&](const std::string &start) {
        return std::count_if(warnings.begin(), warnings.end(),
                             [&](const std::string &warning) { return warning.rfind(start, 0) == 0; });
    };
    CHECK(said("protect.cgroup: \"/*\" matches everything: every process is protected") == 1);
    CHECK(said("rules.wide.match.comm: \"*\" matches everything") == 1);
    CHECK(said("rules.wide.when.written: 2147483648 bytes is more than the largest filesystem it watches holds "
               "(1073741824 bytes)") == 1);
    CHECK(said("rules.fits") == 0);
    // No mount selector: the largest filesystem of the host (16 GiB) holds 8 GiB.
    CHECK(said("rules.lists") == 0);
    CHECK(warnings.size() == 3);
    // Without the sizes, the written check is not made.
    CHECK(policy_warnings(*policy, {"/", "/data", "/big"}).size() == 2);
}

TEST_CASE("the recorder's keys: defaults, values, and errors naming file, line and key", "[policy][recorder]")
{
    const Policy defaults = parsed_ok("interval: 1s\n");
    CHECK(defaults.recorder.enabled);
    CHECK(defaults.recorder.path.empty());
    CHECK(defaults.recorder.max_bytes == 64ull << 20);
    CHECK(defaults.recorder.resolution_s == 10);
    CHECK(defaults.recorder.coarse_resolution_s == 300);
    CHECK(defaults.recorder.retention_s == 0);

    const Policy set = parsed_ok("recorder:\n  path: /srv/rec\n  max_size: 128MiB\n  resolution: 5s\n"
                                 "  coarse_resolution: 1m\n  retention: 7d\n  rows: 10\n");
    CHECK(set.recorder.path == "/srv/rec");
    CHECK(set.recorder.max_bytes == 128ull << 20);
    CHECK(set.recorder.resolution_s == 5);
    CHECK(set.recorder.coarse_resolution_s == 60);
    CHECK(set.recorder.retention_s == 7 * 86400);
    CHECK(set.recorder.rows == 10);
    CHECK_FALSE(parsed_ok("recorder: {enabled: false}\n").recorder.enabled);

    CHECK(error_of("recorder:\n  max_size: 10\n").rfind("policy.yaml:2: recorder.max_size:", 0) == 0);
    CHECK(error_of("recorder:\n  path: relative/dir\n").rfind("policy.yaml:2: recorder.path: must be an absolute", 0) == 0);
    CHECK(error_of("recorder:\n  path: /proc/self\n").rfind("policy.yaml:2: recorder.path: must be on a disk", 0) == 0);
    // 10m alone cannot be downsampled into the default 5m: the key given is named.
    CHECK(error_of("recorder:\n  resolution: 10m\n").rfind("policy.yaml:2: recorder.resolution: must divide", 0) == 0);
    CHECK(error_of("recorder:\n  resolution: 10s\n  coarse_resolution: 25s\n")
              .rfind("policy.yaml:3: recorder.coarse_resolution: must be a whole multiple", 0) == 0);
    CHECK(error_of("recorder:\n  rows: 0\n").rfind("policy.yaml:2: recorder.rows:", 0) == 0);
    CHECK(error_of("recorder:\n  resolutoin: 10s\n").rfind("policy.yaml:2: recorder.resolutoin: unknown key", 0) == 0);
}
