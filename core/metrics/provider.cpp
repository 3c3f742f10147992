#include "core/metrics/provider.h"

#include "core/classify/provider_table.h"

namespace kasi {

std::string_view provider_of(std::string_view host) {
    return ProviderTable::shipped().provider_of(host);
}

}  // namespace kasi
