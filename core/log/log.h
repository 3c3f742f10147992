// Process-wide logger: the one deliberate shared sink for every loop and thread. A line is
// formatted by the caller's thread and written with a single write(2) under a mutex, so
// lines from different loops never interleave. Destination: stderr or a file (log.ini),
// reopened by reopen() on SIGHUP and `kasictl reopen-logs` so that logrotate can rename it.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace kasi::log {

enum class Level { debug = 0, info = 1, notice = 2, warn = 3, error = 4, crit = 5 };

bool parse_level(std::string_view name, Level& out);
void set_level(Level l);
Level level();
// Opens (append) or switches to a file; an empty path means stderr. False with errno set.
bool set_file(const std::string& path);
// Opens the current file's path again (after logrotate renamed it): the lines written before
// go to the old file, the ones after to the new one. The old file stays in use if the
// path cannot be opened (false, errno set). Nothing to do for stderr.
bool reopen();
void write(Level l, std::string_view msg);

template <class... Args>
void at(Level l, fmt::format_string<Args...> f, Args&&... args) {
    if (l < level()) return;
    write(l, fmt::format(f, std::forward<Args>(args)...));
}

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... a) {
    at(Level::debug, f, std::forward<Args>(a)...);
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... a) {
    at(Level::info, f, std::forward<Args>(a)...);
}
template <class... Args>
void notice(fmt::format_string<Args...> f, Args&&... a) {
    at(Level::notice, f, std::forward<Args>(a)...);
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... a) {
    at(Level::warn, f, std::forward<Args>(a)...);
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... a) {
    at(Level::error, f, std::forward<Args>(a)...);
}
template <class... Args>
void crit(fmt::format_string<Args...> f, Args&&... a) {
    at(Level::crit, f, std::forward<Args>(a)...);
}

}  // namespace kasi::log
