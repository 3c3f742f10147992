#include "core/server/check_as_user.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/server/server_config.h"

namespace kasi {

namespace {

class UniqueFd {  // closes its descriptor
  public:
    explicit UniqueFd(int fd) : fd_(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

  private:
    int fd_;
};

// In the child: become `u`, load, write one error per line to `fd`; never returns.
[[noreturn]] void child_check(const ServiceUser& u, const std::string& dir, int fd) {
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);  // the parent prints what counts
    if (null >= 0) {
        ::dup2(null, 1);
        ::dup2(null, 2);
    }
    std::string out;
    if (::initgroups(u.name.c_str(), u.gid) != 0 || ::setgid(u.gid) != 0 || ::setuid(u.uid) != 0) {
        out = fmt::format("cannot become user {}: {}\n", u.name, std::strerror(errno));
    } else if (::access((dir + "/config").c_str(), R_OK | X_OK) != 0) {
        out = fmt::format("{}/config: {}\n", dir, std::strerror(errno));
    } else {
        Diagnostics d;
        load_server_config(dir, d);
        for (auto e : d.errors) {
            for (auto& c : e)
                if (c == '\n') c = ' ';
            out += e + "\n";
        }
    }
    for (size_t off = 0; off < out.size();) {
        ssize_t n = ::write(fd, out.data() + off, out.size() - off);
        if (n <= 0) break;
        off += size_t(n);
    }
    ::_exit(0);
}

}  // namespace

std::optional<ServiceUser> service_user(const std::string& name, const std::string& dir,
                                        std::string& err) {
    if (!name.empty()) {
        const passwd* pw = ::getpwnam(name.c_str());
        if (!pw) {
            err = fmt::format("no such user '{}'", name);
            return std::nullopt;
        }
        return ServiceUser{name, pw->pw_uid, pw->pw_gid};
    }
    Diagnostics d;
    std::string spool = load_settings(ConfigDir(dir + "/config"), dir, d).queue_dir;
    struct stat st {};
    if (::stat(spool.c_str(), &st) == 0 && st.st_uid != 0) {
        const passwd* pw = ::getpwuid(st.st_uid);
        if (pw) return ServiceUser{pw->pw_name, pw->pw_uid, pw->pw_gid};
    }
    const passwd* pw = dir == "/etc/kasi" ? ::getpwnam("kasi") : nullptr;
    if (pw) return ServiceUser{"kasi", pw->pw_uid, pw->pw_gid};
    return std::nullopt;
}

std::vector<std::string> config_errors_as(const ServiceUser& u, const std::string& dir) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0)
        return {fmt::format("checking as user {}: pipe: {}", u.name, std::strerror(errno))};
    UniqueFd rd(p[0]), wr(p[1]);
    pid_t pid = ::fork();
    if (pid < 0)
        return {fmt::format("checking as user {}: fork: {}", u.name, std::strerror(errno))};
    if (pid == 0) child_check(u, dir, wr.get());
    wr.reset();
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(rd.get(), buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0) text.append(buf, size_t(n));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return {fmt::format("checking as user {}: the check did not finish", u.name)};
    std::vector<std::string> errors;
    for (size_t pos = 0; pos < text.size();) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        if (nl > pos) errors.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return errors;
}

}  // namespace kasi
