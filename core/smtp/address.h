// RFC 5321 reverse-path and forward-path parsing (MAIL FROM / RCPT TO arguments).
// Strict by design, because an outbound MTA must never be tricked into relaying:
//   - the path must be in angle brackets; "<>" is the null sender (MAIL only);
//   - a source route (<@a,@b:user@c>) is accepted as RFC 5321 §4.1.1.3 asks and ignored:
//     the destination is user@c, never a;
//   - the domain is lowercased and one trailing dot removed; an address literal
//     ([1.2.3.4], [IPv6:...]) is kept as written and never matches a local domain;
//   - UTF-8 is allowed only when the client declared SMTPUTF8.
// `has_routing_chars` flags local parts that some MDAs interpret as further routing
// (%, !, a quoted @); the relay check refuses those for local domains.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kasi {

struct Address {
    std::string local;   // as written (quoted strings keep their quotes)
    std::string domain;  // lowercased, no trailing dot; empty for <>
    bool null = false;   // <>
    bool literal = false;
    bool had_route = false;
    bool has_routing_chars = false;
    bool utf8 = false;

    std::string str() const;  // "local@domain" or "" for null
};

struct AddressParse {
    std::optional<Address> address;
    std::string rest;   // what follows the closing '>' (parameters), trimmed
    std::string error;  // set when address is empty
};

AddressParse parse_path(std::string_view arg, bool allow_null, bool allow_utf8);

}  // namespace kasi
