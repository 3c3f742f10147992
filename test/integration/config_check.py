"""kasi --check-config and start-up refusal with precise file:line messages."""
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from harness import KASI, KASICTL, ROOT, Kasi, Skip, run


def check(files):
    d = tempfile.mkdtemp(prefix="kasi-cc-")
    try:
        shutil.copytree(os.path.join(ROOT, "configs", "basic"), os.path.join(d, "config"))
        for name, text in files.items():
            with open(os.path.join(d, "config", name), "w") as f:
                f.write(text)
        r = subprocess.run([KASI, "-c", d, "--check-config"], capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr
    finally:
        shutil.rmtree(d)


def test_valid_config():
    rc, out = check({})
    assert rc == 0 and "configuration OK" in out, out


def test_example_quickstart_is_valid():
    r = subprocess.run([KASI, "-c", os.path.join(ROOT, "..", "examples", "quickstart"), "--check-config"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_example_esp_is_valid():
    r = subprocess.run([KASI, "-c", os.path.join(ROOT, "..", "examples", "esp"), "--check-config"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_egress_ini_errors_name_the_line():
    rc, out = check({"egress.ini": "[source:a]\naddress=not-an-ip\n[pool:p]\na=0\nb=1\n"})
    assert rc == 1, out
    assert "egress.ini:2: [source:a] address 'not-an-ip' is not an IP address" in out, out
    assert "egress.ini:4: [pool:p] a: the weight must be 1 to 1000000" in out, out
    assert "egress.ini:5: [pool:p] names source 'b', which is not defined" in out, out


def test_unknown_plugin_names_the_line():
    rc, out = check({"plugins": "relay\n\n# c\nno_such_plugin\n"})
    assert rc == 1 and "config/plugins:4: unknown plugin 'no_such_plugin'" in out, out


def test_bad_values_name_file_and_line():
    rc, out = check({"smtp.ini": "inactivity_timeout=soon\nlisten=127.0.0.1:99999\n",
                     "relay_acl_allow": "127.0.0.1\nnot-an-ip\n",
                     "connection.ini": "[max]\nbytes=-5\n",
                     "log.ini": "[main]\nlevel=loud\n"})
    assert rc == 1, out
    for needle in ["smtp.ini:1: [main] inactivity_timeout: expected an integer",
                   "smtp.ini:2: [main] listen: '127.0.0.1:99999'",
                   "relay_acl_allow:2: 'not-an-ip'",
                   "connection.ini:2: [max] bytes: -5 is out of range",
                   "log.ini:2: [main] level: unknown level 'loud'"]:
        assert needle in out, (needle, out)


def test_outbound_values_name_file_and_line():
    rc, out = check({"outbound.ini": "temp_fail_intervals=60 min\ninet_prefer=v5\nmax_age=soon\n"
                                     "[queues]\nmax_message_rate=10/week\n[site:*.google.com]\n"
                                     "max_connections=0\n[bogus]\n",
                     "tls.ini": "[outbound]\ntls_failure_memory=-1\n"})
    assert rc == 1, out
    for needle in ["outbound.ini:1: temp_fail_intervals: '60min' is not <number><s|m|h|d>",
                   "outbound.ini:2: inet_prefer 'v5'",
                   "outbound.ini:3: max_age 'soon'",
                   "outbound.ini:5: [queues] max_message_rate '10/week'",
                   "outbound.ini:7: [site:*.google.com] max_connections",
                   "outbound.ini:8: unknown section [bogus]",
                   "tls.ini:2: [outbound] tls_failure_memory"]:
        assert needle in out, (needle, out)


def test_unknown_keys_warn_but_pass():
    rc, out = check({"relay.ini": "[relay]\nacl=true\nacls=true\n"})
    assert rc == 0, out
    assert "relay.ini:3: [relay] unknown key 'acls'" in out, out


def test_start_refuses_bad_config():
    d = tempfile.mkdtemp(prefix="kasi-cc-")
    try:
        shutil.copytree(os.path.join(ROOT, "configs", "basic"), os.path.join(d, "config"))
        with open(os.path.join(d, "config", "plugins"), "w") as f:
            f.write("bogus\n")
        r = subprocess.run([KASI, "-c", d], capture_output=True, text=True, timeout=10)
        assert r.returncode == 1 and "unknown plugin 'bogus'" in r.stderr, r.stderr
    finally:
        shutil.rmtree(d)


def test_version_and_usage():
    r = subprocess.run([KASI, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("kasi "), r.stdout
    r = subprocess.run([KASI], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr


def test_dkim_verify_is_refused_naming_the_line():
    rc, out = check({"plugins": "relay\n# inbound checks\ndkim_verify\n"})
    assert rc == 1, out
    assert "config/plugins:3: plugin 'dkim_verify': Kasi signs outbound mail with DKIM" in out, out
    assert "does not verify" in out, out
    rc, out = check({"plugins": "relay\nharaka-plugin-dkim_verify\n"})
    assert rc == 1 and "config/plugins:2: plugin 'haraka-plugin-dkim_verify'" in out, out
    rc, out = check({"plugins": "relay\ndkim_sign\n"})  # the signer's old name still works
    assert rc == 0, out


def test_start_refuses_dkim_verify():
    d = tempfile.mkdtemp(prefix="kasi-cc-")
    try:
        shutil.copytree(os.path.join(ROOT, "configs", "basic"), os.path.join(d, "config"))
        with open(os.path.join(d, "config", "plugins"), "w") as f:
            f.write("relay\ndkim_verify\n")
        r = subprocess.run([KASI, "-c", d], capture_output=True, text=True, timeout=10)
        assert r.returncode == 1 and "plugin 'dkim_verify'" in r.stderr, r.stderr
    finally:
        shutil.rmtree(d)


class ServiceUser:
    """A system user made for the test (useradd; needs root), removed by close()."""

    def __init__(self):
        if os.geteuid() != 0 or not shutil.which("useradd"):
            raise Skip("needs root and useradd")
        self.name = "kasit" + uuid.uuid4().hex[:8]
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        "--user-group", self.name], check=True)
        self.uid = pwd.getpwnam(self.name).pw_uid

    def close(self):
        subprocess.run(["userdel", self.name], check=False)
        subprocess.run(["groupdel", self.name], check=False, capture_output=True)


def dkim_dir():
    d = tempfile.mkdtemp(prefix="kasi-cc-")
    os.chmod(d, 0o755)  # the service user must reach the config
    shutil.copytree(os.path.join(ROOT, "configs", "basic"), os.path.join(d, "config"))
    with open(os.path.join(d, "config", "plugins"), "w") as f:
        f.write("relay\ndkim\n")
    with open(os.path.join(d, "config", "dkim.ini"), "w") as f:
        f.write("[sign]\nenabled=true\n")
    return d


def keygen(d, *args):
    return subprocess.run([KASICTL, "-c", d, "dkim", "keygen", *args], capture_output=True,
                          text=True)


def test_check_config_as_root_checks_keys_as_the_service_user():
    u = ServiceUser()
    d = dkim_dir()
    try:
        # the service's spool belongs to its user; a key only root can read, as
        # `kasictl dkim keygen` run as root used to write it
        os.makedirs(os.path.join(d, "queue"))
        os.chown(os.path.join(d, "queue"), u.uid, -1)
        r = keygen(d, "example.test", "s1")
        assert r.returncode == 0, r.stderr
        key = os.path.join(d, "config", "dkim", "example.test", "s1.private")
        os.chown(key, 0, 0)
        os.chmod(key, 0o600)
        r = subprocess.run([KASI, "-c", d, "--check-config"], capture_output=True, text=True)
        out = r.stdout + r.stderr
        assert r.returncode == 1, out  # checked as the spool's owner, not only as root
        assert f"as user {u.name}" in out and key in out, out
        r = subprocess.run([KASI, "-c", d, "--check-config", "--user", u.name],
                           capture_output=True, text=True)
        out = r.stdout + r.stderr
        assert r.returncode == 1, out
        assert f"as user {u.name}" in out and key in out, out
        assert f"chown {u.name}: {key} && chmod 0600 {key}" in out, out
        # what the service's own pre-start check (run as that user) says, too
        r = subprocess.run(["setpriv", f"--reuid={u.name}", f"--regid={u.name}", "--init-groups",
                            KASI, "-c", d, "--check-config"], capture_output=True, text=True)
        assert r.returncode == 1 and key in r.stderr, r.stdout + r.stderr
        os.unlink(key)
        # keygen gives the key to the user named, readable by it alone
        r = keygen(d, "example.test", "s1", "--user", u.name)
        assert r.returncode == 0 and f"owner {u.name}" in r.stdout, r.stdout + r.stderr
        st = os.stat(key)
        assert st.st_uid == u.uid and st.st_mode & 0o777 == 0o600, st
        r = subprocess.run([KASI, "-c", d, "--check-config", "--user", u.name],
                           capture_output=True, text=True)
        assert r.returncode == 0 and f"checked as root and as user {u.name}" in r.stdout, \
            r.stdout + r.stderr
        r = subprocess.run(["setpriv", f"--reuid={u.name}", f"--regid={u.name}", "--init-groups",
                            KASI, "-c", d, "--check-config"], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        # without --user, keygen gives the key to the owner of the spool directory
        r = keygen(d, "other.test", "s2", "--ed25519")
        assert r.returncode == 0, r.stderr
        st = os.stat(os.path.join(d, "config", "dkim", "other.test", "s2.private"))
        assert st.st_uid == u.uid and st.st_mode & 0o777 == 0o600, st
        # and --check-config checks as that owner without being told
        r = subprocess.run([KASI, "-c", d, "--check-config"], capture_output=True, text=True)
        assert r.returncode == 0 and f"checked as root and as user {u.name}" in r.stdout, \
            r.stdout + r.stderr
        os.chmod(key, 0o644)
        os.chown(key, 0, 0)
        os.chmod(key, 0o600)
        r = subprocess.run([KASI, "-c", d, "--check-config"], capture_output=True, text=True)
        assert r.returncode == 1 and key in r.stderr, r.stdout + r.stderr
        # a key directory the service user cannot list would leave its keys unloaded
        os.chmod(os.path.join(d, "config", "dkim", "other.test"), 0o700)
        r = subprocess.run([KASI, "-c", d, "--check-config"], capture_output=True, text=True)
        assert r.returncode == 1 and "cannot list the DKIM keys" in r.stderr, \
            r.stdout + r.stderr
        r = subprocess.run([KASI, "-c", d, "--check-config", "--user", "no-such-user-x"],
                           capture_output=True, text=True)
        assert r.returncode == 2 and "no such user" in r.stderr, r.stderr
    finally:
        shutil.rmtree(d)
        u.close()


def test_adaptive_rules_name_the_line():
    # the rules of the adaptive plugin: the shipped defaults, or config/adaptive.lua
    lua = os.path.abspath(os.path.join(ROOT, "..", "lua"))
    base = {"plugins": "relay\nrcpt_to.in_host_list\nadaptive\n",
            "lua.ini": "[main]\nlibrary_path[]=%s\n" % lua}
    rc, out = check(base)
    assert rc == 0 and "configuration OK" in out, out
    head = "local a = require('kasi.adaptive').defaults()\n"
    good = head + "a:set('google-rate', { threshold = 5 })\na:remove('any-rate')\nreturn a\n"
    rc, out = check(dict(base, **{"adaptive.lua": good}))
    assert rc == 0 and "configuration OK" in out, out
    bad = head + "\na:set('google-rate', { window = 'soon' })\nreturn a\n"
    rc, out = check(dict(base, **{"adaptive.lua": bad}))
    assert rc == 1, out
    assert "adaptive.lua:3: adaptive rule 'google-rate': window: must be a duration" in out, out
    rc, out = check(dict(base, **{"adaptive.lua": head + "while true do end\nreturn a\n"}))
    assert rc == 1 and "adaptive.lua:2: instruction budget exceeded" in out, out
    # the circuit breakers' settings: checked alike, with the line of the call
    rc, out = check(dict(base, **{"adaptive.lua": head + "a:tenant('acme', { probe = 0.5 })\n"
                                  "a:tenant('acme', { window = '2h' })\nreturn a\n"}))
    assert rc == 1, out
    assert "adaptive.lua:3: adaptive breaker: tenants.acme.window: must be a duration" in out, out
    # without the plugin the file is not read
    rc, out = check({"adaptive.lua": bad})
    assert rc == 0, out


def test_port_in_use_is_a_clear_error():
    with Kasi() as k:
        d = tempfile.mkdtemp(prefix="kasi-cc-")
        try:
            shutil.copytree(os.path.join(k.dir, "config"), os.path.join(d, "config"))
            r = subprocess.run([KASI, "-c", d], capture_output=True, text=True, timeout=10)
            assert r.returncode == 1 and "cannot listen on 127.0.0.1:%d" % k.port in r.stderr, r.stderr
        finally:
            shutil.rmtree(d)


run(globals())
