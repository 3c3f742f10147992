// The mailbox provider behind an MX host (or a recipient domain when no MX was reached), for
// metrics labels: a fixed table of the big providers' MX suffixes, "other" for the rest, so
// the label's cardinality is bounded whatever the traffic.
#pragma once

#include <string_view>

namespace kasi {

std::string_view provider_of(std::string_view host);

}  // namespace kasi
