"""Test certificates made at run time with the openssl command line: a private CA and leaf
certificates signed by it (RSA or ECDSA, any CN and DNS SANs), so TLS clients in the
tests can verify what the server presents."""
import os
import subprocess


def _run(*args):
    subprocess.run(args, check=True, capture_output=True)


class Pki:
    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca_key = os.path.join(directory, "ca.key")
        self.ca_cert = os.path.join(directory, "ca.pem")
        _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "3650",
             "-subj", "/CN=Kasi Test CA")

    def leaf(self, name, cn, sans=(), kind="ec"):
        """Writes <name>.key and <name>.pem; returns (key_path, cert_path)."""
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        cert = os.path.join(self.dir, name + ".pem")
        ext = os.path.join(self.dir, name + ".ext")
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec" \
            else ["-newkey", "rsa:2048"]
        _run("openssl", "req", *newkey, "-nodes", "-keyout", key, "-out", csr,
             "-subj", "/CN=" + cn)
        with open(ext, "w") as f:
            alt = ",".join("DNS:" + s for s in (sans or [cn]))
            f.write(f"subjectAltName={alt}\nextendedKeyUsage=serverAuth,clientAuth\n")
        _run("openssl", "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
             "-CAcreateserial", "-out", cert, "-days", "3650", "-extfile", ext)
        return key, cert
