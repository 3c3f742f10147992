#include "core/ctl/ctl_socket.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kasi {

bool ctl_socket_request(const std::string& spool, const std::string& line, std::string& reply,
                        std::string& err, bool* refused) {
    std::string path = spool + "/control.sock";
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (fd < 0 || path.size() >= sizeof sa.sun_path) {
        err = path + ": bad socket path";
        if (fd >= 0) ::close(fd);
        return false;
    }
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        if (refused) *refused = errno == ENOENT || errno == ECONNREFUSED;
        err = path + ": " + std::strerror(errno) + " (is kasi running?)";
        ::close(fd);
        return false;
    }
    std::string msg = line + "\n";
    if (::write(fd, msg.data(), msg.size()) != ssize_t(msg.size())) {
        err = std::string("write: ") + std::strerror(errno);
        ::close(fd);
        return false;
    }
    reply.clear();
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) reply.append(buf, size_t(n));
    ::close(fd);
    return true;
}

}  // namespace kasi
