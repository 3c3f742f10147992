// Which mailbox provider a destination belongs to: ONE table for the whole of Kasi, the
// data file rules/providers.tsv (MX host or domain suffix -> provider name). The
// classifier tags every outcome with it, the metrics label outcomes with it
// (core/metrics/provider.h), and Lua policies ask it through kasi.provider_of(host)
// (lua/kasi/providers.lua builds its throttling profiles on it).
//
// A host belongs to the entry with the longest suffix that ends it on a label boundary
// ("google.com" covers "gmail-smtp-in.l.google.com", not "notgoogle.com"); nothing, an IP
// address or an empty name is "other". Provider names are few and fixed by the file, so
// a metrics label built on them stays bounded whatever the traffic.
//
// File format: one `SUFFIX PROVIDER` pair per line (blanks or a tab between them), `#`
// comments; a bad line is an error with its file:line.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kasi {

class ProviderTable {
  public:
    static std::shared_ptr<const ProviderTable> parse(std::string_view text,
                                                      const std::string& path, std::string& err);
    static std::shared_ptr<const ProviderTable> load(const std::string& path, std::string& err);

    // The table shipped with Kasi (default_rules_dir()/providers.tsv), read once on first
    // use; if it cannot be read every host is "other" and shipped_error() says why.
    static const ProviderTable& shipped();
    static const std::string& shipped_error();

    // The provider of an MX host name or a domain (any case, trailing dot allowed).
    std::string_view provider_of(std::string_view host) const;
    // Every provider name the table knows, sorted.
    std::vector<std::string> providers() const;

  private:
    std::unordered_map<std::string, std::string> suffixes_;
};

}  // namespace kasi
