// kasictl verp|unsubscribe: the decoding and verification functions of core/queue/verp.h
// and core/smtp/unsubscribe.h, with the secrets of DIR/config.
//   kasictl -c DIR verp decode ADDRESS         -> "message ID" and "recipient R" | "index N"
//   kasictl -c DIR unsubscribe verify TOKEN    -> recipient, list, tenant, issued
// Exit status 1 when the address or token is not genuine.
#pragma once

#include <string>
#include <vector>

namespace kasi {

int ctl_verp(const std::string& dir, const std::vector<std::string>& args);
int ctl_unsubscribe(const std::string& dir, const std::vector<std::string>& args);

}  // namespace kasi
