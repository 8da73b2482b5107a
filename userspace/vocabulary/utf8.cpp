#include "vocabulary/utf8.h"

namespace diskwatch {

size_t utf8_sequence_length(std::string_view text, size_t i, unsigned *code_point)
{
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned lead = byte(i);
    size_t length;
    unsigned cp;
    if (lead < 0x80)
        return *code_point = lead, 1;
    if (lead >= 0xc2 && lead <= 0xdf)
        length = 2, cp = lead & 0x1f;
    else if (lead >= 0xe0 && lead <= 0xef)
        length = 3, cp = lead & 0x0f;
    else if (lead >= 0xf0 && lead <= 0xf4)
        length = 4, cp = lead & 0x07;
    else
        return 0;
    if (i + length > text.size())
        return 0;
    for (size_t k = 1; k < length; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (byte(i + k) & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((length == 3 && cp < 0x800) || (length == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *code_point = cp;
    return length;
}

bool is_valid_utf8(std::string_view text)
{
    unsigned cp = 0;
    for (size_t i = 0; i < text.size();) {
        const size_t length = utf8_sequence_length(text, i, &cp);
        if (length == 0)
            return false;
        i += length;
    }
    return true;
}

}  // namespace diskwatch
