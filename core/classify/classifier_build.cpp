// Classifier::load: parse every file, check what spans files, compile (compiled_rules.h).
#include <algorithm>
#include <map>
#include <set>

#include "core/classify/compiled_rules.h"
#include "core/classify/rules_dir.h"
#include "core/classify/taxonomy.h"

namespace kasi {

int reason_index(std::string_view name) {
    auto r = known_reasons();
    auto it = std::find(r.begin(), r.end(), name);
    return it == r.end() ? -1 : int(it - r.begin());
}

namespace {

std::string at(const RuleLoc& l) {
    return l.path + ":" + std::to_string(l.line) + ": ";
}

// The operator's rule set and the shipped one, parsed.
struct Parsed {
    RuleSet op, shipped;
    std::string classify_dir;
};

bool parse_all(const ClassifierSources& src, Parsed& p, std::string& err) {
    for (const auto& f : src.operator_files)
        if (!load_rule_file(f, p.op, err)) return false;
    p.classify_dir = src.rules_dir + "/classify";
    std::vector<std::string> files;
    if (!list_rule_files(p.classify_dir, files, err)) return false;
    if (files.empty()) {
        err = p.classify_dir + ": no *.rules files";
        return false;
    }
    for (const auto& f : files)
        if (!load_rule_file(f, p.shipped, err)) return false;
    return true;
}

// One layer's reason defaults into `out` (unset entries only: the operator's layer goes
// first and wins); a reason defined twice in one layer is an error.
bool add_reasons(const std::vector<ReasonDef>& defs, std::vector<ReasonInfo>& out,
                 std::vector<bool>& set, std::string& err) {
    std::map<std::string, const ReasonDef*> seen;
    for (const auto& d : defs) {
        auto [it, fresh] = seen.emplace(d.name, &d);
        if (!fresh) {
            err = at(d.loc) + "reason " + d.name + " is already defined at " +
                  it->second->loc.where();
            return false;
        }
        int i = reason_index(d.name);
        if (set[size_t(i)]) continue;
        out[size_t(i)] = {d.cls, d.hard, d.scope};
        set[size_t(i)] = true;
    }
    return true;
}

bool build_reasons(const Parsed& p, Classifier::Impl& impl, std::string& err) {
    auto names = known_reasons();
    impl.reasons.assign(names.size(), {});
    std::vector<bool> set(names.size(), false);
    if (!add_reasons(p.op.reasons, impl.reasons, set, err) ||
        !add_reasons(p.shipped.reasons, impl.reasons, set, err))
        return false;
    for (size_t i = 0; i < names.size(); ++i) {
        if (set[i]) continue;
        err = p.classify_dir + ": no 'reason " + std::string(names[i]) +
              "' line gives its class, hard and scope";
        return false;
    }
    return true;
}

void build_tables(const RuleSet& rs, Classifier::Impl& impl) {
    for (const auto& e : rs.statuses) {
        impl.status_patterns.push_back(e.pattern);
        impl.status_rows.push_back({reason_index(e.reason), e.loc.where()});
    }
    for (const auto& e : rs.codes) {
        impl.code_patterns.push_back(e.pattern);
        impl.code_rows.push_back({reason_index(e.reason), e.loc.where()});
    }
}

void build_groups(const RuleSet& rs, std::map<std::string, int>& names, Classifier::Impl& impl) {
    for (const auto& ph : rs.phrases) {
        auto [it, fresh] = names.emplace(ph.group, int(impl.groups.size()));
        if (fresh) impl.groups.emplace_back();
        impl.groups[size_t(it->second)].push_back(impl.matcher.add(ph.pattern));
    }
}

// What a condition may name that only the whole rule set knows.
struct Names {
    std::map<std::string, int> groups;
    std::set<std::string> providers;
};

bool compile_cond(const Condition& c, const RuleLoc& loc, const Names& names,
                  Classifier::Impl& impl, CompiledCond& out, std::string& err) {
    out.key = c.key;
    out.negate = c.negate;
    out.statuses = c.statuses;
    out.codes = c.codes;
    out.words = c.words;
    if (c.key == CondKey::text) out.pattern = impl.matcher.add(c.text);
    for (const auto& w : c.words) {
        if (c.key == CondKey::means) out.ids.push_back(reason_index(w));
        if (c.key == CondKey::says) {
            auto it = names.groups.find(w);
            if (it == names.groups.end()) {
                err = at(loc) + "no phrase line defines the group '" + w + "'";
                return false;
            }
            out.ids.push_back(it->second);
        }
        if (c.key == CondKey::provider && w != "other" && !names.providers.count(w)) {
            err = at(loc) + "unknown provider '" + w + "' (not in providers.tsv)";
            return false;
        }
    }
    return true;
}

bool build_rules(const RuleSet& rs, const Names& names, Classifier::Impl& impl, std::string& err) {
    for (const auto& r : rs.rules) {
        CompiledRule cr;
        cr.target = r.target == "@status" ? kTargetStatus
                    : r.target == "@code" ? kTargetCode
                                          : reason_index(r.target);
        cr.cls = r.cls;
        cr.hard = r.hard;
        cr.scope = r.scope;
        cr.where = r.loc.where();
        for (const auto& c : r.conds) {
            cr.conds.emplace_back();
            if (!compile_cond(c, r.loc, names, impl, cr.conds.back(), err)) return false;
        }
        impl.rules.push_back(std::move(cr));
    }
    return true;
}

}  // namespace

bool ClassifierSources::for_config(const std::string& config_dir, ClassifierSources& out,
                                   std::string& err) {
    out.rules_dir = default_rules_dir();
    out.operator_files.clear();
    return operator_rule_files(config_dir, out.operator_files, err);
}

Classifier::Classifier(std::unique_ptr<Impl> impl, std::shared_ptr<const ProviderTable> providers)
    : impl_(std::move(impl)), providers_(std::move(providers)) {}
Classifier::~Classifier() = default;

size_t Classifier::rule_count() const {
    return impl_->rules.size();
}

std::shared_ptr<const Classifier> Classifier::load(const ClassifierSources& src, std::string& err) {
    auto providers = ProviderTable::load(src.rules_dir + "/providers.tsv", err);
    if (!providers) return nullptr;
    Parsed p;
    if (!parse_all(src, p, err)) return nullptr;
    auto impl = std::make_unique<Impl>();
    if (!build_reasons(p, *impl, err)) return nullptr;
    build_tables(p.op, *impl);
    build_tables(p.shipped, *impl);
    Names names;
    for (auto& n : providers->providers()) names.providers.insert(n);
    build_groups(p.op, names.groups, *impl);
    build_groups(p.shipped, names.groups, *impl);
    if (!build_rules(p.op, names, *impl, err) || !build_rules(p.shipped, names, *impl, err))
        return nullptr;
    std::string why;
    if (!impl->matcher.compile(why)) {
        err = src.rules_dir + ": " + why;
        return nullptr;
    }
    return std::make_shared<const Classifier>(std::move(impl), std::move(providers));
}

std::shared_ptr<const Classifier> Classifier::load_shipped(std::string& err) {
    return load(ClassifierSources{default_rules_dir(), {}}, err);
}

}  // namespace kasi
