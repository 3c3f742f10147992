// The mailbox provider behind an MX host (or a recipient domain when no MX was reached), for
// metrics labels: the one provider table of Kasi (rules/providers.tsv, read through
// core/classify/provider_table.h), "other" for the rest, so the label's cardinality is
// bounded whatever the traffic, and a metric's provider is the classifier's.
#pragma once

#include <string_view>

namespace kasi {

std::string_view provider_of(std::string_view host);

}  // namespace kasi
