"""A test CA with a server certificate for 127.0.0.1 and client certificates, via openssl."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Certs", "make_certs"]

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    directory: Path

    def client(self, name: str) -> tuple[Path, Path]:
        """(cert, key) of a client certificate with common name `name`, signed by the CA."""
        cert, key = self.directory / f"{name}.crt", self.directory / f"{name}.key"
        if cert.exists() and key.exists():
            return cert, key
        return _signed(self.directory, name, "clientAuth")


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


def _signed(directory: Path, name: str, usage: str) -> tuple[Path, Path]:
    _openssl(directory, "req", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN={name}")  # fmt: skip
    (directory / f"{name}.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        f"extendedKeyUsage={usage}\n"
    )
    _openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey",
             "ca.key", "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
             "-extfile", f"{name}.ext")  # fmt: skip
    return directory / f"{name}.crt", directory / f"{name}.key"


def make_certs(directory: Path) -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(directory, "req", "-x509", *_EC, "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=sfed-test-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    cert, key = _signed(directory, "sfedd", "serverAuth")
    return Certs(directory / "ca.crt", cert, key, directory)
