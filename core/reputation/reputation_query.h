// What an operator asks the reputation matrix, in the same words everywhere: the control
// socket's `reputation source=IP provider=gmail`, the admin API's
// `GET /api/v1/admin/reputation?source=IP&provider=gmail` and kasictl's
// `reputation --source IP --provider gmail` all become these pairs.
//
//   source, domain, provider, tenant   only cells with this value ("" names a roll-up's
//                                      wildcard: domain= shows the source x provider rows)
//   rollups = true                     only the roll-ups
//   limit = N                          at most N rows (default 1000, at most 100000)
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "core/reputation/reputation_matrix.h"

namespace kasi {

struct RepQuery {
    RepFilter filter;
    size_t limit = 1000;
};

// False with `err` naming the key or value that is not understood.
bool parse_rep_query(const std::vector<std::pair<std::string, std::string>>& kv, RepQuery& q,
                     std::string& err);
// "key=value key=value" (the control socket's words) into pairs; a word without '=' is a
// key with an empty value.
std::vector<std::pair<std::string, std::string>> rep_query_words(const std::string& line);

}  // namespace kasi
