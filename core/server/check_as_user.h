// `kasi --check-config` run as root checks the configuration a second time as the user the
// service runs as (the packaged unit: User=kasi), because what root can read the service
// may not: a DKIM key written 0600 root:root passes as root and stops the service at its
// next start. The check forks before anything else is loaded; the child takes the user's
// uid, gid and supplementary groups (so file modes, directory search rights and ACLs are
// checked by the kernel, as they will be for the service), loads the configuration and
// sends its errors back through a pipe.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace kasi {

struct ServiceUser {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
};

// The user named `name`; or, when `name` is empty, the owner of the spool directory of
// `dir` when it exists and is not root (kasi writes there: that is its user), else the
// package's user `kasi` when `dir` is the package's /etc/kasi and the user exists.
// nullopt when there is none; with `err` set when a named user does not exist.
std::optional<ServiceUser> service_user(const std::string& name, const std::string& dir,
                                        std::string& err);

// Loads the configuration of `dir` as `u` in a child process; its errors (empty when it
// loaded), or one error saying why the check could not run.
std::vector<std::string> config_errors_as(const ServiceUser& u, const std::string& dir);

}  // namespace kasi
