"""A throw-away CA and a server certificate for 127.0.0.1 / localhost, made with the openssl
CLI in a temporary folder (TLS tests: the SMSC simulator wrapped in TLS)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Certs:
    ca: Path  # the test CA's certificate (what `tls_ca` points at)
    cert: Path  # the server's certificate, signed by the CA
    key: Path
    other_ca: Path  # a CA that did not sign the server certificate

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(folder: Path, name: str) -> None:
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
         "-keyout", f"{name}.key", "-out", f"{name}.pem",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         cwd=folder)  # fmt: skip


def make_certs(folder: Path) -> Certs:
    if shutil.which("openssl") is None:
        raise RuntimeError("the openssl CLI is needed to make test certificates (apt-get install openssl)")
    folder.mkdir(parents=True, exist_ok=True)
    _ca(folder, "test-ca")
    _ca(folder, "other-ca")
    _run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr",
         cwd=folder)  # fmt: skip
    (folder / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    _run("x509", "-req", "-in", "server.csr", "-CA", "test-ca.pem", "-CAkey", "test-ca.key", "-CAcreateserial",
         "-days", "2", "-out", "server.pem", "-extfile", "ext.cnf", cwd=folder)  # fmt: skip
    return Certs(folder / "test-ca.pem", folder / "server.pem", folder / "server.key", folder / "other-ca.pem")
