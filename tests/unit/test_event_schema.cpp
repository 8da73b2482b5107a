// The one definition of the events (userspace/vocabulary/event.cpp's table) against
// docs/events.md and against what the builders make; the sinks' view of a
// typed event is what it was when they read the NDJSON line back.
//
// Strict schema checks for the whole unit_tests run: the listener below turns
// set_event_schema_strict on before every test case, so a builder that sets a
// field its type's table does not list (or leaves out a required one) throws
// std::logic_error wherever a test exercises it (the enforcer's tests too).
// The product runs non-strict: the mistake is dropped, counted and reported.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "vocabulary/event.h"
#include "events/events.h"
#include "vocabulary/internal_errors.h"
#include "metrics/agent_metrics.h"
#include "metrics/metrics_sink.h"
#include "sinks/event_fields.h"
#include "sinks/syslog_sink.h"

using namespace diskwatch;

namespace {

struct StrictEventSchema : Catch::TestEventListenerBase {
    using TestEventListenerBase::TestEventListenerBase;
    // Before each test case, not once: a test that turns it off cannot leave it off.
    void testCaseStarting(const Catch::TestCaseInfo &info) override
    {
        TestEventListenerBase::testCaseStarting(info);
        set_event_schema_strict(true);
    }
};

}  // namespace

CATCH_REGISTER_LISTENER(StrictEventSchema)

namespace {

// The backquoted words of a markdown table row's first cell.
std::vector<std::string> first_cell_names(const std::string &row)
{
    std::vector<std::string> names;
    const size_t start = row.find('|');
    const size_t end = row.find('|', start + 1);
    if (start == std::string::npos || end == std::string::npos)
        return names;
    const std::string cell = row.substr(start + 1, end - start - 1);
    static const std::regex quoted("`([^`]+)`");
    for (std::sregex_iterator it(cell.begin(), cell.end(), quoted), last; it != last; ++it)
        names.push_back((*it)[1]);
    return names;
}

struct DocumentedEvents {
    std::set<std::string> header;
    // One section per "### " heading of "## Types": the types it names, the fields its table lists.
    std::vector<std::pair<std::set<std::string>, std::set<std::string>>> sections;
};

// docs/events.md: the fields of "## Every event"'s table, and for each
// "### `type`" of "## Types" the first column of its field table.
DocumentedEvents read_docs()
{
    std::ifstream in(std::string(DW_DOCS_DIR) + "/events.md");
    REQUIRE(in);
    DocumentedEvents docs;
    std::string line, part;
    static const std::regex quoted("`([^`]+)`");
    while (std::getline(in, line)) {
        if (line.rfind("## ", 0) == 0) {
            part = line;
            continue;
        }
        const bool row = line.rfind("| `", 0) == 0;
        if (part == "## Every event" && row) {
            for (const auto &name : first_cell_names(line))
                docs.header.insert(name);
        } else if (part == "## Types" && line.rfind("### ", 0) == 0) {
            std::set<std::string> types;
            for (std::sregex_iterator it(line.begin(), line.end(), quoted), last; it != last; ++it)
                types.insert((*it)[1]);
            docs.sections.push_back({types, {}});
        } else if (part == "## Types" && row && !docs.sections.empty()) {
            for (const auto &name : first_cell_names(line))
                docs.sections.back().second.insert(name);
        }
    }
    return docs;
}

Subject sample_subject()
{
    Subject subject;
    subject.pid = 42;
    subject.comm = "w\xff";  // not UTF-8: comm_b64
    subject.exe = "/usr/bin/caf\xc3\xa9";
    subject.cgroup_id = 9;
    subject.cgroup = "/system.slice/docker-" + std::string(64, 'a') + ".scope";
    subject.container_name = "web";
    subject.mount = "/data";
    subject.dev = "7:1";
    subject.fstype = "ext4";
    return subject;
}

PolicyRule sample_rule()
{
    PolicyRule rule;
    rule.name = "flood";
    rule.action = RuleAction::kill;
    rule.when.any = {{Condition::Kind::write_rate, 1000, 2}};
    return rule;
}

// One event of every type, every optional field of `action` set by its method.
std::vector<Event> every_event()
{
    const Subject subject = sample_subject();
    const PolicyRule rule = sample_rule();
    Policy policy;
    policy.rules = {rule};
    RuleMeasures measures;
    measures.write_bps = 2000.4;
    measures.condition = "write_rate";
    const std::string reason = "protect.exe /usr/bin/caf\xc3\xa9", error = "p.yaml:3: rules: bad \xfe",
                      note = "no --config";
    PolicyRule::Requester requester {"top", 1000, 77};
    MountAlert usage;
    usage.mount.mount = "/data";
    usage.mount.fill_bps = 10.4;
    MountAlert eta = usage;
    eta.kind = MountAlert::Kind::eta;
    eta.raised = false;
    std::vector<Event> events {
        agent_start_event("h", "0.1.0", 1, "tp_btf", {"a (tp_btf/sys_exit)"}, policy, false, 2),
        agent_stop_event("h", 3, 0),
        policy_reload_event("h", policy, false),
        policy_reload_event("h", policy, true, &error),
        policy_reload_event("h", policy, false, nullptr, &note),
        runaway_event("h", rule, subject, measures, true, true, &reason),
        runaway_event("h", rule, subject, measures, false, false),
        ActionEvent("h", "kill", &rule.name, subject, "pidfd_send_signal", false)
            .measures(measures)
            .requested(requester)
            .when(rule)
            .protected_by(&reason)
            .throttle(1e6, 30)
            .kill_grace(0.5)
            .sigstop_counts(3, 1)
            .signal("SIGTERM")
            .targets(1)
            .pre_kill({{"argv", {"/bin/true"}}, {"exit_status", 0}})
            .instead_of("kill")
            .omitted("omit /system.slice/*")
            .snooze(60, "2026-11-25T17:55:01.000000Z")
            .escalated(0.9)
            .merge({{"requested", "top"}})
            .build(),
        release_event("h", subject, "sigstop", "guard: the agent (pid 7) exited"),
        throttle_defied_event("h", "flood", RuleScope::process, "sigstop", subject, {5, 0, "bash"}, 1, 4, 1024.0),
        throttle_defied_event("h", "flood", RuleScope::cgroup, "sigstop", subject, {5, 0, "bash"}, 1, 4, std::nullopt),
        mount_alert_event("h", usage, 80, {{42, "w", "/x", 10.4, 5.2}}),
        mount_alert_event("h", eta, 3600, {}),
        warning_event("h", "the guard process exited"),
        drop_warning_event("h", "ring buffer full", 3, 9),
        thread_error_event("h", "internal error in the agent loop", "agent loop", 1, 1),
        action_failed_event("h", "cannot kill: gone", "flood", subject),
    };
    return events;
}

}  // namespace

TEST_CASE("docs/events.md documents every field of every event type and no other (userspace/vocabulary/event.cpp)",
          "[events][docs]")
{
    const DocumentedEvents docs = read_docs();
    std::set<std::string> header;
    for (const auto &field : event_header_fields())
        header.insert(std::string(field.name));
    CHECK(docs.header == header);

    std::set<std::string> documented_types, types;
    for (const auto &[section_types, fields] : docs.sections) {
        documented_types.insert(section_types.begin(), section_types.end());
        INFO("section " << *section_types.begin());
        CHECK_FALSE(fields.empty());
        // Every field a section documents is one of its types'.
        for (const auto &field : fields) {
            bool known = false;
            for (const auto &type : section_types)
                known = known || event_field_known(event_type_named(type), field);
            INFO("documented field " << field);
            CHECK(known);
        }
    }
    for (const auto &info : event_types()) {
        types.insert(std::string(info.name));
        // Every field of the type is documented in its section.
        std::set<std::string> fields;
        for (const auto &[section_types, section_fields] : docs.sections)
            if (section_types.count(std::string(info.name)))
                fields.insert(section_fields.begin(), section_fields.end());
        for (const auto &field : info.fields) {
            INFO(info.name << ": field " << field.name);
            CHECK(fields.count(std::string(field.name)) == 1);
        }
    }
    CHECK(documented_types == types);
}

TEST_CASE("the type names are one table: each name once, and back", "[events]")
{
    std::set<std::string_view> names;
    for (const auto &info : event_types()) {
        CHECK(names.insert(info.name).second);
        CHECK(to_string(info.type) == info.name);
        CHECK(event_type_named(info.name) == info.type);
        CHECK(event_type_info(info.type) == &info);
    }
    CHECK(names.size() == 9);
    CHECK(to_string(EventType::unknown).empty());
    CHECK(event_type_named("something.new") == EventType::unknown);
}

TEST_CASE("the builders make only fields the table lists, and every required one", "[events]")
{
    std::set<std::string> types;
    for (const Event &event : every_event()) {
        const auto *info = event_type_info(event.type());
        REQUIRE(info);
        types.insert(std::string(info->name));
        INFO(event.line());
        CHECK(event.record().at("event") == info->name);
        for (const auto &[key, value] : event.record().items()) {
            INFO("field " << key);
            CHECK(event_field_known(event.type(), key));
        }
        for (const auto &field : info->fields)
            if (field.required)
                CHECK(event.record().contains(std::string(field.name)));
        for (const auto &field : event_header_fields())
            CHECK(event.record().contains(std::string(field.name)));
    }
    CHECK(types.size() == event_types().size());  // every type built

    EventBuilder builder(EventType::agent_stop, "h");
    CHECK_THROWS_AS(builder.set("warning", "no such field here"), std::logic_error);
    CHECK_THROWS_AS(builder.build(), std::logic_error);  // alarms, events_dropped missing
    builder.set("alarms", 1).set("events_dropped", 0);
    CHECK_NOTHROW(builder.build());
    CHECK_THROWS_AS(ActionEvent("h", "release", nullptr, sample_subject(), "none", false).merge({{"bogus", 1}}),
                    std::logic_error);
}

TEST_CASE("an event's line is the sorted, ASCII-only NDJSON the stream has always had", "[events]")
{
    for (const Event &event : every_event()) {
        const std::string &line = event.line();
        INFO(line);
        CHECK(&event.line() == &line);  // serialized once
        // Keys sorted at every level (std::map-backed nlohmann::json), printable ASCII.
        CHECK(nlohmann::json::parse(line).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) == line);
        for (const unsigned char c : line)
            CHECK((c >= 0x20 && c < 0x7f));
    }
    const Event warning = warning_event("h", "caf\xc3\xa9 \xff");
    CHECK_THAT(warning.line(), Catch::Contains(R"("warning":"caf\u00e9 \ufffd")"));
    CHECK_THAT(warning.line(), Catch::StartsWith(R"({"event":"agent.warning","host":"h","ts":")"));
}

TEST_CASE("syslog, journald and metrics see a typed event as they saw its line read back", "[events][syslog][journald][metrics]")
{
    SyslogFormat format;
    format.hostname = "vm";
    for (const Event &event : every_event()) {
        INFO(event.line());
        const Event read_back = Event::from_line(event.line());
        CHECK(read_back.type() == event.type());
        CHECK(flatten_event(event.record()) == flatten_event(read_back.record()));
        CHECK(event_severity(event) == event_severity(read_back));
        // The message's process id and the line are the same; so must the rest be.
        CHECK(format_rfc5424(event, format) == format_rfc5424(read_back, format));
        CHECK(format_journal_entry(event, "ebpf-diskwatch") == format_journal_entry(read_back, "ebpf-diskwatch"));
    }
    metrics::AgentMetrics typed({}), lines({});
    metrics::MetricsSink typed_sink(typed), line_sink(lines);
    for (const Event &event : every_event()) {
        typed_sink.publish(event);
        line_sink.publish(Event::from_line(event.line()));
    }
    // The counters events feed (the rest is the process's own and the clock's).
    const auto counted = [](const std::string &text) {
        std::istringstream in(text);
        std::string out, line;
        while (std::getline(in, line))
            if (line.find("_events_total") != std::string::npos || line.find("_actions_total") != std::string::npos ||
                line.find("config_last_reload_successful") != std::string::npos)
                out += line + "\n";
        return out;
    };
    CHECK(counted(typed.render_text()) == counted(lines.render_text()));
    CHECK_THAT(counted(typed.render_text()), Catch::Contains("event=\"mount.eta\"} 1"));
    CHECK(typed_sink.stats().dropped == 0);
}

namespace {

uint64_t builder_errors()
{
    const auto counts = InternalErrors::instance().counts();
    const auto it = counts.find(kEventBuilderErrors);
    return it == counts.end() ? 0 : it->second;
}

// The product's mode for one test: non-strict, restored to strict after.
struct NonStrict {
    NonStrict() { set_event_schema_strict(false); }
    ~NonStrict() { set_event_schema_strict(true); }
    NonStrict(const NonStrict &) = delete;
    NonStrict &operator=(const NonStrict &) = delete;
};

}  // namespace

TEST_CASE("the unit tests check the event schema strictly", "[events]")
{
    CHECK(event_schema_strict());
    EventBuilder builder(EventType::agent_stop, "h");
    CHECK_THROWS_AS(builder.set("bogus", 1), std::logic_error);
    CHECK_THROWS_AS(builder.set("host", "other"), std::logic_error);  // the header is the builder's
    CHECK_THROWS_AS(builder.set("ts", "2026-01-01T00:00:00.000000Z"), std::logic_error);
    CHECK_THROWS_AS(builder.set("event", "agent.start"), std::logic_error);
    builder.set("alarms", 1);
    CHECK_THROWS_AS(builder.build(), std::logic_error);  // events_dropped missing
    CHECK_THROWS_AS(ActionEvent("h", "release", nullptr, sample_subject(), "none", false).merge({{"host", "x"}}),
                    std::logic_error);
}

TEST_CASE("in the product a builder's mistake is dropped, counted as an internal error, and the event still comes out",
          "[events][errors]")
{
    NonStrict product;
    std::vector<std::string> reported;
    InternalErrors::instance().set_reporter(
        [&](const std::string &thread, const std::string &what, uint64_t, uint64_t) {
            if (thread == kEventBuilderErrors)
                reported.push_back(what);
        });
    const uint64_t before = builder_errors();

    // Every builder, as the tests above make them: no mistake, nothing counted.
    CHECK_FALSE(every_event().empty());
    CHECK(builder_errors() == before);

    // An unknown field and the header's fields: dropped, one count each; the rest kept.
    EventBuilder builder(EventType::agent_stop, "h");
    CHECK_NOTHROW(builder.set("bogus", 1));
    CHECK_NOTHROW(builder.set("host", "forged"));
    CHECK_NOTHROW(builder.set("event", "agent.start"));
    CHECK_NOTHROW(builder.set("ts", "1970-01-01T00:00:00.000000Z"));
    builder.set("alarms", 3).set("events_dropped", 0);
    CHECK(builder_errors() == before + 4);
    Event event = builder.build();
    CHECK(builder_errors() == before + 4);
    INFO(event.line());
    CHECK(event.type() == EventType::agent_stop);
    CHECK_FALSE(event.record().contains("bogus"));
    CHECK(event.record().at("host") == "h");
    CHECK(event.record().at("event") == "agent.stop");
    CHECK(event.record().at("ts") != "1970-01-01T00:00:00.000000Z");
    CHECK(event.record().at("alarms") == 3);
    CHECK(nlohmann::json::parse(event.line()) == nlohmann::json::parse(event.record().dump()));

    // A required field left out: the event comes out without it, counted.
    EventBuilder partial(EventType::agent_stop, "h");
    partial.set("alarms", 1);
    Event without = Event::from_line("{}");
    CHECK_NOTHROW(without = partial.build());
    CHECK(builder_errors() == before + 5);
    CHECK(without.type() == EventType::agent_stop);
    CHECK(without.record().at("alarms") == 1);
    CHECK_FALSE(without.record().contains("events_dropped"));
    CHECK_FALSE(without.line().empty());

    // merge() of extras (the enforcer's path, between an action and its record).
    ActionEvent action("h", "release", nullptr, sample_subject(), "none", false);
    CHECK_NOTHROW(action.merge({{"bogus", 1}, {"reason", "kept"}}));
    CHECK(builder_errors() == before + 6);
    const Event released = action.build();
    CHECK_FALSE(released.record().contains("bogus"));
    CHECK(released.record().at("reason") == "kept");

    // Reported as an internal error of the event builder (the first of each period).
    REQUIRE_FALSE(reported.empty());
    CHECK_THAT(reported.front(), Catch::Contains("bogus"));
    InternalErrors::instance().set_reporter(nullptr);
}

TEST_CASE("an event's line is made with it, not on first read", "[events]")
{
    for (const Event &event : every_event()) {
        REQUIRE(event.shared_line());
        CHECK(*event.shared_line() == event.line());
        CHECK(event.shared_line().get() == &event.line());
    }
    const Event record = Event::from_record({{"event", "agent.stop"}, {"host", "h"}});
    REQUIRE(record.shared_line());
    CHECK(record.line() == R"({"event":"agent.stop","host":"h"})");
    CHECK(Event::from_line("not json").line() == "not json");
}

TEST_CASE("docs/events.md's examples are events of known types with only their table's fields", "[events][docs]")
{
    std::ifstream in(std::string(DW_DOCS_DIR) + "/events.md");
    REQUIRE(in);
    std::string line, part;
    bool in_block = false;
    int examples = 0;
    while (std::getline(in, line)) {
        if (line.rfind("## ", 0) == 0) {
            part = line;
            continue;
        }
        if (part != "## Examples")
            continue;
        if (line.rfind("```", 0) == 0) {
            in_block = !in_block;
            continue;
        }
        if (!in_block || line.empty())
            continue;
        ++examples;
        INFO("example: " << line);
        const auto record = nlohmann::json::parse(line, nullptr, false);
        REQUIRE_FALSE(record.is_discarded());
        REQUIRE(record.is_object());
        REQUIRE(record.contains("event"));
        REQUIRE(record.at("event").is_string());
        const EventType type = event_type_named(record.at("event").get<std::string>());
        REQUIRE(type != EventType::unknown);
        for (const auto &field : event_header_fields())
            CHECK(record.contains(std::string(field.name)));
        for (const auto &[key, value] : record.items()) {
            INFO("field " << key);
            CHECK(event_field_known(type, key));
        }
        for (const auto &field : event_type_info(type)->fields)
            if (field.required) {
                INFO("required field " << field.name);
                CHECK(record.contains(std::string(field.name)));
            }
    }
    CHECK_FALSE(in_block);  // every block closed
    CHECK(examples >= 4);
}
