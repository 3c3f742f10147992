// Parsing JSON that comes from outside (API request bodies, answers of another process):
// one bounded parser for every caller, so that no input can crash or exhaust the process.
//
// - RapidJSON's iterative parser (kParseIterativeFlag): the C++ stack does not grow with the
//   input's nesting (the recursive parser overflows the stack on a few hundred thousand
//   '['). Its own state stack is on the heap and bounded by the depth limit below.
// - A depth limit, checked as the parser reports each array and object: no request needs
//   more than a few levels, and code that walks the tree recursively (RapidJSON's own
//   Accept and copies, the callers' readers) stays safe.
// - A size limit on the text (the HTTP layer bounds bodies too; this is the last line).
// - Strict: exactly one JSON value with only white space around it, valid UTF-8, no NUL.
//
// Each refusal is one precise line for a 400 answer: "JSON nested deeper than 64 levels at
// offset 64", "malformed JSON at offset 7: Missing a colon after a name of object member.".
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace kasi {

struct JsonLimits {
    size_t max_depth = 64;                // arrays and objects nested in one another
    size_t max_bytes = 64 * 1024 * 1024;  // the whole text
};

// Parses `text` in place: the document's strings point into `text` (no second copy of a
// large body), which must therefore outlive `doc` unchanged. False with `err` on refusal;
// `doc` is then null.
bool parse_json_insitu(rapidjson::Document& doc, std::string& text, const JsonLimits& limits,
                       std::string& err);

// The same, with the strings copied into the document.
bool parse_json(rapidjson::Document& doc, std::string_view text, const JsonLimits& limits,
                std::string& err);

}  // namespace kasi
