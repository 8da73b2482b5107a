// Fitting the live view to any terminal width, apart from curses (tested
// without a terminal): text cut or shortened to a number of columns, and
// which columns a line keeps, how wide, at a given width.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace diskwatch {

// The ellipsis the live view puts where text was cut out. ASCII: the live
// view's curses is the narrow one, which counts one column per byte.
inline constexpr std::string_view kEllipsis = "...";

// Columns `text` takes on a terminal: one per UTF-8 character, two for the
// East Asian wide ones, none for combining marks; a byte that is not valid
// UTF-8, or a control character, counts one (fit_* below replace those).
size_t display_width(std::string_view text);

// Bytes >= 0x80 as \xNN: what the narrow curses prints one column per byte.
// Apply to text already through terminal_safe() (its escapes stay as they are).
std::string ascii_only(std::string_view text);

// `text` in at most `width` columns, keeping both ends and putting
// `ellipsis` in the middle ("/var/lib/docker/overlay2/<hex>/merged" ->
// "/var/lib/...d/merged"); the end gets the larger half (it tells paths
// apart). Never cuts a UTF-8 character or a \xNN / \\ escape in two; control
// bytes become '?'. A width below the ellipsis's gives the text's start cut
// to the width (no ellipsis); width 0 gives "".
std::string shorten_middle(std::string_view text, size_t width, std::string_view ellipsis = kEllipsis);

// `text`'s start in at most `width` columns (header and status lines), with
// the same guarantees as shorten_middle.
std::string cut_to_width(std::string_view text, size_t width);

// `text` cut to `width`, then padded with spaces to exactly `width` columns,
// on the right (left-aligned) or on the left (right-aligned).
std::string pad_to_width(std::string_view text, size_t width, bool align_right = false);

// One column a line may show.
struct ColumnSpec {
    size_t min_width = 1;   // below this it is dropped instead
    size_t want_width = 1;  // its natural width, given before any column grows
    unsigned drop_order = 0;  // 0: never dropped; else the highest goes first
    unsigned grow_weight = 0; // share of the room left once all have their want (names, paths)
};

struct PlacedColumn {
    size_t index = 0;  // into the specs
    size_t x = 0;
    size_t width = 0;
};

// The columns that fit in `total_width` with `gap` spaces between them, in
// the specs' order: while their minimum widths do not fit, the one with the
// highest drop_order goes; then each gets up to its want_width (the
// never-dropped first, then by drop order), and what is left goes to the
// growing columns by weight. Columns that are never dropped are kept even if
// they alone do not fit (the caller clips at the edge).
std::vector<PlacedColumn> layout_columns(const std::vector<ColumnSpec> &specs, size_t total_width, size_t gap = 1);

}  // namespace diskwatch
