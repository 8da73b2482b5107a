#include "views/screen_fit.h"

#include <algorithm>
#include <numeric>

namespace diskwatch {

namespace {

// One piece of text never split: a character, or an escape of terminal_safe.
struct Unit {
    std::string text;
    size_t width = 0;
};

bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_wide(unsigned cp)
{
    return (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0x303e) || (cp >= 0x3041 && cp <= 0x33ff) ||
           (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xa000 && cp <= 0xa4cf) ||
           (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) ||
           (cp >= 0xff00 && cp <= 0xff60) || (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) ||
           (cp >= 0x1f900 && cp <= 0x1f9ff) || (cp >= 0x20000 && cp <= 0x3fffd);
}

bool is_combining(unsigned cp)
{
    return (cp >= 0x300 && cp <= 0x36f) || (cp >= 0x1ab0 && cp <= 0x1aff) || (cp >= 0x1dc0 && cp <= 0x1dff) ||
           (cp >= 0x20d0 && cp <= 0x20ff) || (cp >= 0xfe20 && cp <= 0xfe2f) || cp == 0x200b || cp == 0x200c ||
           cp == 0x200d;
}

// Length of the well-formed UTF-8 sequence at text[i] (2 to 4 bytes), 0 if none.
size_t utf8_length(std::string_view text, size_t i, unsigned *cp)
{
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned lead = byte(i);
    size_t length;
    unsigned value;
    unsigned low = 0x80;
    unsigned high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) {
        length = 2;
        value = lead & 0x1f;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        length = 3;
        value = lead & 0x0f;
        if (lead == 0xe0)
            low = 0xa0;
        if (lead == 0xed)
            high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4;
        value = lead & 0x07;
        if (lead == 0xf0)
            low = 0x90;
        if (lead == 0xf4)
            high = 0x8f;
    } else {
        return 0;
    }
    if (i + length > text.size())
        return 0;
    for (size_t k = 1; k < length; ++k) {
        const unsigned b = byte(i + k);
        if (b < (k == 1 ? low : 0x80) || b > (k == 1 ? high : 0xbf))
            return 0;
        value = (value << 6) | (b & 0x3f);
    }
    *cp = value;
    return length;
}

std::vector<Unit> units_of(std::string_view text)
{
    std::vector<Unit> units;
    for (size_t i = 0; i < text.size();) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c == '\\' && i + 3 < text.size() && text[i + 1] == 'x' && is_hex(text[i + 2]) && is_hex(text[i + 3])) {
            units.push_back({std::string(text.substr(i, 4)), 4});
            i += 4;
        } else if (c == '\\' && i + 1 < text.size() && text[i + 1] == '\\') {
            units.push_back({"\\\\", 2});
            i += 2;
        } else if (c < 0x20 || c == 0x7f) {
            units.push_back({"?", 1});
            ++i;
        } else if (c < 0x80) {
            units.push_back({std::string(1, static_cast<char>(c)), 1});
            ++i;
        } else {
            unsigned cp = 0;
            const size_t length = utf8_length(text, i, &cp);
            if (length == 0 || (cp >= 0x80 && cp <= 0x9f)) {  // not UTF-8, or a C1 control
                units.push_back({"?", 1});
                i += length ? length : 1;
            } else {
                units.push_back({std::string(text.substr(i, length)), is_combining(cp) ? 0u : is_wide(cp) ? 2u : 1u});
                i += length;
            }
        }
    }
    return units;
}

// The leading units that fit in `width` columns.
std::string head(const std::vector<Unit> &units, size_t width, size_t *used)
{
    std::string out;
    size_t taken = 0;
    for (const auto &unit : units) {
        if (taken + unit.width > width)
            break;
        out += unit.text;
        taken += unit.width;
    }
    *used = taken;
    return out;
}

}  // namespace

size_t display_width(std::string_view text)
{
    size_t width = 0;
    for (const auto &unit : units_of(text))
        width += unit.width;
    return width;
}

std::string ascii_only(std::string_view text)
{
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x80) {
            out += ch;
        } else {
            out += "\\x";
            out += digits[c >> 4];
            out += digits[c & 0xf];
        }
    }
    return out;
}

std::string cut_to_width(std::string_view text, size_t width)
{
    size_t used = 0;
    return head(units_of(text), width, &used);
}

std::string shorten_middle(std::string_view text, size_t width, std::string_view ellipsis)
{
    const std::vector<Unit> units = units_of(text);
    size_t total = 0;
    for (const auto &unit : units)
        total += unit.width;
    size_t used = 0;
    if (total <= width)
        return head(units, width, &used);
    const size_t ellipsis_width = display_width(ellipsis);
    if (width <= ellipsis_width)
        return head(units, width, &used);
    const size_t room = width - ellipsis_width;
    const size_t tail_room = room - room / 2;  // the end gets the larger half
    // The tail: units from the end while they fit.
    std::string tail;
    size_t tail_used = 0;
    size_t first_tail = units.size();
    while (first_tail > 0 && tail_used + units[first_tail - 1].width <= tail_room) {
        --first_tail;
        tail_used += units[first_tail].width;
    }
    for (size_t k = first_tail; k < units.size(); ++k)
        tail += units[k].text;
    // The head takes what the tail left (a wide character may leave a column).
    std::string start = head(units, room - tail_used, &used);
    return start + std::string(ellipsis) + tail;
}

std::string pad_to_width(std::string_view text, size_t width, bool align_right)
{
    size_t used = 0;
    std::string fitted = head(units_of(text), width, &used);
    const std::string padding(width - used, ' ');
    return align_right ? padding + fitted : fitted + padding;
}

std::vector<PlacedColumn> layout_columns(const std::vector<ColumnSpec> &specs, size_t total_width, size_t gap)
{
    std::vector<size_t> kept(specs.size());
    std::iota(kept.begin(), kept.end(), 0);
    auto needed = [&] {
        size_t sum = 0;
        for (size_t i : kept)
            sum += specs[i].min_width;
        return sum + (kept.empty() ? 0 : gap * (kept.size() - 1));
    };
    while (needed() > total_width) {
        auto victim = std::max_element(kept.begin(), kept.end(),
                                       [&](size_t a, size_t b) { return specs[a].drop_order < specs[b].drop_order; });
        if (victim == kept.end() || specs[*victim].drop_order == 0)
            break;
        kept.erase(victim);
    }
    std::vector<size_t> width(specs.size(), 0);
    for (size_t i : kept)
        width[i] = specs[i].min_width;
    size_t left = total_width > needed() ? total_width - needed() : 0;
    // Up to the natural width: the never-dropped first, then by drop order.
    std::vector<size_t> by_priority = kept;
    std::stable_sort(by_priority.begin(), by_priority.end(),
                     [&](size_t a, size_t b) { return specs[a].drop_order < specs[b].drop_order; });
    for (size_t i : by_priority) {
        const size_t want = specs[i].want_width > width[i] ? specs[i].want_width - width[i] : 0;
        const size_t given = std::min(want, left);
        width[i] += given;
        left -= given;
    }
    // The rest to the growing columns, by weight; the remainder to the first.
    unsigned weights = 0;
    for (size_t i : kept)
        weights += specs[i].grow_weight;
    if (weights > 0 && left > 0) {
        size_t handed = 0;
        for (size_t i : kept) {
            const size_t share = left * specs[i].grow_weight / weights;
            width[i] += share;
            handed += share;
        }
        for (size_t i : kept)
            if (specs[i].grow_weight) {
                width[i] += left - handed;
                break;
            }
    }
    std::vector<PlacedColumn> placed;
    size_t x = 0;
    for (size_t i : kept) {
        placed.push_back({i, x, width[i]});
        x += width[i] + gap;
    }
    return placed;
}

}  // namespace diskwatch
