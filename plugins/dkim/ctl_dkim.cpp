#include "plugins/dkim/ctl_dkim.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/util/file.h"
#include "core/util/strings.h"
#include "plugins/dkim/dkim_key.h"

namespace kasi {

namespace {

namespace fs = std::filesystem;

struct Owner {
    std::string name;
    uid_t uid = uid_t(-1);
    gid_t gid = gid_t(-1);
};

// The file gets `owner` (when given) before any byte of it is written.
bool write_new_file(const std::string& path, const std::string& data, mode_t mode,
                    const Owner* owner = nullptr) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return false;
    bool ok = (!owner || ::fchown(fd, owner->uid, owner->gid) == 0) && ::fchmod(fd, mode) == 0;
    ok = ok && ::write(fd, data.data(), data.size()) == ssize_t(data.size()) && ::fsync(fd) == 0;
    int e = errno;
    ::close(fd);
    if (!ok) ::unlink(path.c_str());
    errno = e;
    return ok;
}

std::optional<Owner> user_named(const std::string& name) {
    const passwd* pw = ::getpwnam(name.c_str());
    if (!pw) return std::nullopt;
    return Owner{name, pw->pw_uid, pw->pw_gid};
}

// Who the key is for when kasictl runs as root (ctl_dkim.h): nullopt = keep it root's.
std::optional<Owner> key_owner(const std::string& dir, const std::string& user, std::string& err) {
    if (!user.empty()) {
        auto o = user_named(user);
        if (!o) err = fmt::format("no such user '{}'", user);
        return o;
    }
    Diagnostics d;
    std::string spool = load_settings(ConfigDir(dir + "/config"), dir, d).queue_dir;
    struct stat st {};
    if (::stat(spool.c_str(), &st) == 0 && st.st_uid != 0) {
        const passwd* pw = ::getpwuid(st.st_uid);
        return Owner{pw ? pw->pw_name : std::to_string(st.st_uid), st.st_uid,
                     pw ? pw->pw_gid : st.st_gid};
    }
    return user_named("kasi");
}

// create_directories, with 0755 for the ones it makes (whatever the umask).
bool make_dirs(const fs::path& p, std::error_code& ec) {
    std::vector<fs::path> made;
    for (fs::path q = p; !q.empty() && !fs::exists(q, ec); q = q.parent_path()) {
        made.push_back(q);
        if (q == q.parent_path()) break;
    }
    if (ec) return false;
    fs::create_directories(p, ec);
    for (const auto& q : made) ::chmod(q.c_str(), 0755);
    return !ec;
}

int keygen(const std::string& dir, const std::vector<std::string>& a) {
    if (a.size() < 3) {
        std::fprintf(stderr,
                     "usage: kasictl -c DIR dkim keygen DOMAIN SELECTOR [--ed25519] "
                     "[--bits N] [--user NAME]\n");
        return 2;
    }
    std::string domain = to_lower(a[1]), selector = a[2], user;
    bool ed = false;
    int bits = 2048;
    for (size_t i = 3; i < a.size(); ++i) {
        if (a[i] == "--ed25519")
            ed = true;
        else if (a[i] == "--bits" && i + 1 < a.size())
            bits = std::atoi(a[++i].c_str());
        else if (a[i] == "--user" && i + 1 < a.size())
            user = a[++i];
        else {
            std::fprintf(stderr, "kasictl dkim keygen: unknown option %s\n", a[i].c_str());
            return 2;
        }
    }
    for (const auto& n : {domain, selector})
        if (n.empty() || n.find('/') != std::string::npos || n.front() == '.' ||
            n.find("..") != std::string::npos) {
            std::fprintf(stderr, "kasictl dkim keygen: '%s' is not a DNS name\n", n.c_str());
            return 2;
        }
    if (!ed && (bits < 1024 || bits > 8192)) {
        std::fprintf(stderr, "kasictl dkim keygen: --bits must be 1024..8192 (2048 advised)\n");
        return 2;
    }
    std::string err;
    std::optional<Owner> owner;
    if (::geteuid() == 0) {
        owner = key_owner(dir, user, err);
        if (!err.empty()) {
            std::fprintf(stderr, "kasictl dkim keygen: --user: %s\n", err.c_str());
            return 2;
        }
    } else if (!user.empty()) {
        std::fprintf(stderr, "kasictl dkim keygen: --user needs root (to give the key away)\n");
        return 2;
    }
    auto key =
        dkim::PrivateKey::generate(ed ? dkim::KeyType::ed25519 : dkim::KeyType::rsa, bits, err);
    if (!key) {
        std::fprintf(stderr, "kasictl dkim keygen: %s\n", err.c_str());
        return 1;
    }
    fs::path kdir = fs::path(dir) / "config" / "dkim" / domain;
    std::error_code ec;
    if (!make_dirs(kdir, ec)) {
        std::fprintf(stderr, "kasictl dkim keygen: %s: %s\n", kdir.c_str(), ec.message().c_str());
        return 1;
    }
    std::string path = (kdir / (selector + ".private")).string();
    if (!write_new_file(path, key->pem(), 0600, owner ? &*owner : nullptr)) {
        std::fprintf(stderr, "kasictl dkim keygen: %s: %s\n", path.c_str(),
                     errno == EEXIST ? "exists already (remove it to make a new key)"
                                     : std::strerror(errno));
        return 1;
    }
    std::string zone = dkim_zone_line(selector, domain, key->dns_record());
    std::string dns_path = (kdir / (selector + ".dns")).string();
    ::unlink(dns_path.c_str());
    write_new_file(dns_path, zone + "\n", 0644);
    std::string who = owner ? owner->name : "";
    if (who.empty()) {
        const passwd* pw = ::getpwuid(::geteuid());
        who = pw ? pw->pw_name : std::to_string(::geteuid());
    }
    std::printf(
        "wrote %s (%s, mode 0600, owner %s)\npublish this TXT record, then reload kasi:\n%s\n",
        path.c_str(), ed ? "Ed25519" : fmt::format("RSA {} bits", bits).c_str(), who.c_str(),
        zone.c_str());
    if (::geteuid() == 0 && !owner)
        std::fprintf(stderr,
                     "kasictl dkim keygen: warning: no user kasi and no --user: the key is "
                     "readable by root only; give it to the user kasi runs as "
                     "(chown USER: %s)\n",
                     path.c_str());
    return 0;
}

int records(const std::string& dir, const std::vector<std::string>& a) {
    fs::path root = fs::path(dir) / "config" / "dkim";
    std::error_code ec;
    int shown = 0, bad = 0;
    for (const auto& d : fs::directory_iterator(root, ec)) {
        if (!d.is_directory()) continue;
        std::string domain = to_lower(d.path().filename().string());
        if (a.size() > 1 && domain != to_lower(a[1])) continue;
        for (const auto& f : fs::directory_iterator(d.path(), ec)) {
            std::string name = f.path().filename().string(), selector;
            if (name == "private") {
                std::string s;
                if (read_whole_file((d.path() / "selector").string(), s)) selector = trim(s);
            } else if (f.path().extension() == ".private") {
                selector = f.path().stem().string();
            } else {
                continue;
            }
            std::string err, warn;
            auto key = dkim::PrivateKey::load(f.path().string(), err, warn);
            if (!key) {
                std::fprintf(stderr, "%s: %s\n", f.path().c_str(), err.c_str());
                ++bad;
                continue;
            }
            std::printf("%s\n", dkim_zone_line(selector, domain, key->dns_record()).c_str());
            ++shown;
        }
    }
    if (shown == 0 && bad == 0) std::fprintf(stderr, "no DKIM keys under %s\n", root.c_str());
    return bad ? 1 : 0;
}

}  // namespace

std::string dkim_zone_line(const std::string& selector, const std::string& domain,
                           const std::string& record) {
    std::string out = fmt::format("{}._domainkey.{}. IN TXT (", selector, domain);
    for (size_t pos = 0; pos < record.size(); pos += 250)
        out += fmt::format(" \"{}\"", record.substr(pos, 250));
    return out + " )";
}

const CtlCommand dkim_ctl_command = {
    "dkim",
    "dkim keygen DOMAIN SELECTOR [--ed25519] [--bits N] [--user NAME]\ndkim records [DOMAIN]",
    &ctl_dkim};

int ctl_dkim(const std::string& dir, const std::vector<std::string>& args) {
    if (!args.empty() && args[0] == "keygen") return keygen(dir, args);
    if (!args.empty() && args[0] == "records" && args.size() <= 2) return records(dir, args);
    std::fprintf(stderr,
                 "usage: kasictl -c DIR dkim keygen DOMAIN SELECTOR [--ed25519] [--bits N] "
                 "[--user NAME]\n"
                 "       kasictl -c DIR dkim records [DOMAIN]\n");
    return 2;
}

}  // namespace kasi
