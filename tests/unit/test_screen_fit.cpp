// The live view's width logic, without a terminal (views/screen_fit.h).
#include <catch2/catch.hpp>

#include <string>

#include "views/format.h"
#include "views/screen_fit.h"

using namespace diskwatch;

namespace {

const std::string kOverlay =
    "/var/lib/docker/overlay2/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/merged";

}  // namespace

TEST_CASE("shorten_middle keeps both ends of a long path", "[screen_fit]")
{
    const std::string short_form = shorten_middle(kOverlay, 20);
    CHECK(display_width(short_form) == 20);
    CHECK(short_form.rfind("/var/lib", 0) == 0);
    CHECK(short_form.find("...") != std::string::npos);
    CHECK(short_form.size() >= 7);
    CHECK(short_form.compare(short_form.size() - 7, 7, "/merged") == 0);
    CHECK(shorten_middle("/var/log/suricata/eve.json", 40) == "/var/log/suricata/eve.json");
    CHECK(shorten_middle("/var/log/suricata/eve.json", 26) == "/var/log/suricata/eve.json");
    CHECK(shorten_middle("abcdefghij", 7) == "ab...ij");
    CHECK(shorten_middle("abcdefghij", 8) == "ab...hij");  // the end gets the larger half
    for (size_t width = 0; width < kOverlay.size() + 2; ++width)
        CHECK(display_width(shorten_middle(kOverlay, width)) <= width);
}

TEST_CASE("shorten_middle with a width at or below the ellipsis's cuts the start, and 0 gives nothing",
          "[screen_fit]")
{
    CHECK(shorten_middle("abcdefghij", 0).empty());
    CHECK(shorten_middle("abcdefghij", 1) == "a");
    CHECK(shorten_middle("abcdefghij", 3) == "abc");
    CHECK(shorten_middle("abcdefghij", 4) == "...j");
    CHECK(shorten_middle("", 0).empty());
    CHECK(shorten_middle("", 5).empty());
    CHECK(shorten_middle("abcdef", 3, "") == "aef");  // an empty ellipsis: just the ends
}

TEST_CASE("UTF-8 names are cut between characters, wide ones counted as two columns", "[screen_fit]")
{
    const std::string name = "/srv/donn\xc3\xa9" "es/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e/journal-\xc3\xa9t\xc3\xa9.log";
    CHECK(display_width("\xc3\xa9") == 1);
    CHECK(display_width("\xe6\x97\xa5") == 2);
    CHECK(display_width("e\xcc\x81") == 1);  // e + combining acute
    for (size_t width = 0; width < 48; ++width) {
        const std::string out = shorten_middle(name, width);
        INFO(width << ": " << out);
        CHECK(display_width(out) <= width);
        CHECK(is_valid_utf8(out));  // never half a character
        const std::string start = cut_to_width(name, width);
        CHECK(display_width(start) <= width);
        CHECK(is_valid_utf8(start));
        CHECK(display_width(pad_to_width(name, width)) == width);
        CHECK(display_width(pad_to_width(name, width, true)) == width);
    }
}

TEST_CASE("control characters never reach the screen, and escapes are never split", "[screen_fit]")
{
    // Raw controls (a caller that forgot terminal_safe) become '?'.
    const std::string hostile = "evil\x1b[2J\x07name\x7f\r\nend\xc2\x9b" "31m";
    for (size_t width = 0; width < 30; ++width) {
        for (const std::string &out : {shorten_middle(hostile, width), cut_to_width(hostile, width)}) {
            INFO(width << ": " << out);
            CHECK(display_width(out) <= width);
            for (const char c : out) {
                const auto byte = static_cast<unsigned char>(c);
                CHECK((byte >= 0x20 && byte != 0x7f));
            }
            CHECK(out.find("\xc2\x9b") == std::string::npos);  // C1 CSI
        }
    }
    // terminal_safe's \xNN and \\ stay whole: an escape cut in two could read as another.
    const std::string safe = terminal_safe("ab\x1b" "cdefgh\\ij");
    CHECK(safe == "ab\\x1bcdefgh\\\\ij");
    CHECK(cut_to_width(safe, 4) == "ab");
    CHECK(cut_to_width(safe, 6) == "ab\\x1b");
    for (size_t width = 0; width < safe.size() + 1; ++width) {
        const std::string out = shorten_middle(safe, width);
        INFO(width << ": " << out);
        CHECK(display_width(out) <= width);
        // Every backslash in the output starts a whole escape.
        for (size_t i = out.find('\\'); i != std::string::npos; i = out.find('\\', i + 2)) {
            const bool hex = out.compare(i, 2, "\\x") == 0 && i + 3 < out.size();
            const bool pair = out.compare(i, 2, "\\\\") == 0;
            CHECK((hex || pair));
            if (hex)
                i += 2;
        }
    }
    CHECK(ascii_only("caf\xc3\xa9") == "caf\\xc3\\xa9");
    CHECK(ascii_only("plain/ascii") == "plain/ascii");
}

TEST_CASE("columns drop by priority when the terminal is narrow and the room left goes to names",
          "[screen_fit]")
{
    // pid, name, path, rate, history (dropped first), total (dropped second)
    const std::vector<ColumnSpec> specs = {
        {5, 8, 0, 0}, {8, 16, 0, 0}, {10, 20, 3, 2}, {8, 10, 0, 0}, {12, 12, 5, 0}, {6, 10, 4, 0}};
    auto ids = [](const std::vector<PlacedColumn> &placed) {
        std::vector<size_t> out;
        for (const auto &column : placed)
            out.push_back(column.index);
        return out;
    };
    auto right_edge = [](const std::vector<PlacedColumn> &placed) {
        return placed.empty() ? size_t{0} : placed.back().x + placed.back().width;
    };
    // Everything at its natural width, and the rest to the path.
    const auto wide = layout_columns(specs, 200);
    CHECK(ids(wide) == std::vector<size_t>{0, 1, 2, 3, 4, 5});
    CHECK(right_edge(wide) == 200);
    CHECK(wide[2].width == 200 - 5 - (8 + 16 + 10 + 12 + 10));
    // 54 columns: all minimums need 49 + 5 gaps; history goes.
    const auto narrow = layout_columns(specs, 50);
    CHECK(ids(narrow) == std::vector<size_t>{0, 1, 2, 3, 5});
    CHECK(right_edge(narrow) <= 50);
    // Narrower still: total goes too; never-dropped columns stay.
    const auto narrower = layout_columns(specs, 36);
    CHECK(ids(narrower) == std::vector<size_t>{0, 1, 2, 3});
    CHECK(right_edge(narrower) <= 36);
    const auto tiny = layout_columns(specs, 10);
    CHECK(ids(tiny) == std::vector<size_t>{0, 1, 3});  // kept though they do not fit: the caller clips
    // Columns never overlap.
    for (size_t width : {10, 36, 50, 80, 120, 200}) {
        const auto placed = layout_columns(specs, width);
        for (size_t i = 1; i < placed.size(); ++i)
            CHECK(placed[i].x >= placed[i - 1].x + placed[i - 1].width + 1);
    }
    CHECK(layout_columns({}, 80).empty());
}
