// The bounded vocabularies of the outcome taxonomy (classification.h), and their parsers.
//
// Reasons are sisimai's names: the shared words of bounce tooling, so a rule file, an event
// and an ESP dashboard mean the same thing by "userunknown". Which class, hardness and
// scope a reason has by default is data (the `reason` lines of rules/classify/00-reasons.rules);
// which names exist is fixed here, so a typo in a rule file is an error, not a new reason.
//
// Classes are Kasi's coarser set, the one operators and the outcome stage act on. Both
// sets are listed with their meaning in docs/bounces.md.
#pragma once

#include <span>
#include <string_view>

#include "core/classify/classification.h"

namespace kasi {

// Every reason name a rule may use, in alphabetical order.
std::span<const std::string_view> known_reasons();
bool is_known_reason(std::string_view name);

// Every class name, in the order docs/bounces.md explains them.
std::span<const std::string_view> known_classes();
bool is_known_class(std::string_view name);

// The SMTP commands a rule's command= may name ("CONNECT" = before or at the greeting).
bool is_known_command(std::string_view name);
// A command as the delivery code or a bounce tool spells it ("rcpt to", "CONN", "end of
// data") in the form rules use ("RCPT", "CONNECT", "DATA"); "" when unknown.
std::string canonical_command(std::string_view name);

bool parse_scope(std::string_view name, Scope& out);
bool parse_outcome_kind(std::string_view name, OutcomeKind& out);

}  // namespace kasi
