#include "render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace keyhole::cli {

using nlohmann::json;

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Decodes one UTF-8 sequence at `text[index]`; returns its length, or 0 when
// it is invalid (overlong forms, surrogates and values past U+10FFFF included).
std::size_t decode_utf8(std::string_view text, std::size_t index, char32_t& code_point) {
    auto byte = [&](std::size_t at) { return static_cast<unsigned char>(text[at]); };
    unsigned char lead = byte(index);
    std::size_t length = 0;
    char32_t value = 0;
    char32_t minimum = 0;
    if (lead < 0x80) {
        code_point = lead;
        return 1;
    } else if ((lead & 0xE0) == 0xC0) {
        length = 2, value = lead & 0x1F, minimum = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3, value = lead & 0x0F, minimum = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4, value = lead & 0x07, minimum = 0x10000;
    } else {
        return 0;
    }
    if (index + length > text.size()) return 0;
    for (std::size_t offset = 1; offset < length; ++offset) {
        unsigned char next = byte(index + offset);
        if ((next & 0xC0) != 0x80) return 0;
        value = (value << 6) | (next & 0x3F);
    }
    if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
    code_point = value;
    return length;
}

bool unsafe_on_terminal(char32_t code_point) {
    if (code_point == '\n' || code_point == '\t') return false;
    if (code_point < 0x20 || code_point == 0x7F) return true;            // C0, DEL
    if (code_point >= 0x80 && code_point <= 0x9F) return true;           // C1 (CSI etc.)
    if (code_point >= 0x202A && code_point <= 0x202E) return true;       // bidi embeddings
    if (code_point >= 0x2066 && code_point <= 0x2069) return true;       // bidi isolates
    return code_point == 0x200E || code_point == 0x200F || code_point == 0x061C;  // marks
}

std::size_t display_width(std::string_view text) {
    // Code points, not bytes: good enough for IDs, endpoints and unit names.
    return static_cast<std::size_t>(std::count_if(
        text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

}  // namespace

std::string dump_text(const json& value, int indent) {
    return value.dump(indent, ' ', false, json::error_handler_t::replace);
}

const json& field(const json& object, const char* name) {
    static const json missing;
    if (!object.is_object()) return missing;
    auto found = object.find(name);
    return found == object.end() ? missing : *found;
}

std::string plain(const json& value, std::string_view when_null) {
    if (value.is_null()) return std::string(when_null);
    if (value.is_string()) return value.get<std::string>();
    return dump_text(value);
}

std::string utc_time_text(const json& unix_ms) {
    if (!unix_ms.is_number()) return plain(unix_ms, "unknown");
    double milliseconds = unix_ms.get<double>();
    if (!std::isfinite(milliseconds) || std::fabs(milliseconds) > 1e17) return dump_text(unix_ms);
    auto seconds = static_cast<std::time_t>(std::floor(milliseconds / 1000));
    std::tm utc{};
    char text[32];
    if (!gmtime_r(&seconds, &utc) ||
        std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S", &utc) == 0) {
        return dump_text(unix_ms);
    }
    return text;
}

std::string milliseconds_text(double milliseconds) {
    char text[48];
    if (!std::isfinite(milliseconds) || milliseconds < 0) return "?";
    if (milliseconds < 10) {
        std::snprintf(text, sizeof(text), "%.1f ms", milliseconds);
    } else if (milliseconds < 1e12) {
        std::snprintf(text, sizeof(text), "%.0f ms", milliseconds);
    } else {
        return "?";
    }
    return text;
}

bool is_valid_utf8(std::string_view text) {
    char32_t ignored = 0;
    for (std::size_t index = 0; index < text.size();) {
        std::size_t length = decode_utf8(text, index, ignored);
        if (length == 0) return false;
        index += length;
    }
    return true;
}

std::string terminal_safe(std::string_view text) {
    std::string safe;
    safe.reserve(text.size());
    for (std::size_t index = 0; index < text.size();) {
        char32_t code_point = 0;
        std::size_t length = decode_utf8(text, index, code_point);
        if (length == 0) {
            safe += kReplacement;
            ++index;
            continue;
        }
        if (unsafe_on_terminal(code_point)) {
            safe += kReplacement;
        } else {
            safe.append(text.substr(index, length));
        }
        index += length;
    }
    return safe;
}

std::string indented_text(std::string_view text, std::size_t indent) {
    std::string safe = terminal_safe(text);
    std::string result;
    result.reserve(safe.size());
    for (char c : safe) {
        result.push_back(c);
        if (c == '\n') result.append(indent, ' ');
    }
    return result;
}

std::string short_id(const json& id, std::size_t count) {
    std::string text = terminal_safe(plain(id, "?"));
    if (text.size() <= count) return text;
    return text.substr(0, count) + "…";
}

void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> widths(header.size(), 0);
    auto measure = [&](const std::vector<std::string>& row) {
        for (std::size_t column = 0; column < row.size() && column < widths.size(); ++column) {
            widths[column] = std::max(widths[column], display_width(row[column]));
        }
    };
    measure(header);
    for (const auto& row : rows) measure(row);
    auto print_row = [&](const std::vector<std::string>& row) {
        std::string line;
        for (std::size_t column = 0; column < row.size(); ++column) {
            line += row[column];
            if (column + 1 < row.size() && column < widths.size()) {
                line.append(widths[column] - display_width(row[column]) + 2, ' ');
            }
        }
        out << line << '\n';
    };
    print_row(header);
    for (const auto& row : rows) print_row(row);
}

}  // namespace keyhole::cli
