#include "core/server/listen_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace kasi {

int open_listen_socket(const ListenAddr& a, std::string& err) {
    sockaddr_storage ss{};
    socklen_t len;
    bool v6 = a.host.find(':') != std::string::npos;
    if (v6) {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(uint16_t(a.port));
        inet_pton(AF_INET6, a.host.c_str(), &s6->sin6_addr);
        len = sizeof *s6;
    } else {
        auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
        s4->sin_family = AF_INET;
        s4->sin_port = htons(uint16_t(a.port));
        inet_pton(AF_INET, a.host.c_str(), &s4->sin_addr);
        len = sizeof *s4;
    }
    int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = fmt::format("{}: socket: {}", a.str(), std::strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (v6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 1024) != 0) {
        err = fmt::format("cannot listen on {}: {}", a.str(), std::strerror(errno));
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace kasi
