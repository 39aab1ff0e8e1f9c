"""Per-cluster certificates and keys for the test cluster, made with the openssl command line."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key on disk."""

    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _ec_key(path: Path) -> None:
    # P-256 keys: generating them is instant, unlike RSA, which matters for a cluster made per test session.
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(path), cwd=path.parent)


class CertificateAuthority:
    """A throwaway CA in `directory` that signs server and client certificates for one cluster."""

    def __init__(self, directory: Path, name: str = "jobplane-test-ca") -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.pair = KeyPair(directory / "ca.crt", directory / "ca.key")
        _ec_key(self.pair.key)
        _openssl(
            "req",
            "-x509",
            "-new",
            "-key",
            str(self.pair.key),
            "-days",
            "3650",
            "-subj",
            f"/CN={name}",
            "-out",
            str(self.pair.cert),
            cwd=directory,
        )

    def issue(
        self, name: str, subject: str, *, server_sans: list[str] | None = None, client: bool = False
    ) -> KeyPair:
        """Issue `name`.crt/.key: server_sans makes a serving cert, client=True a client cert (or both)."""
        pair = KeyPair(self.dir / f"{name}.crt", self.dir / f"{name}.key")
        _ec_key(pair.key)
        csr = self.dir / f"{name}.csr"
        _openssl("req", "-new", "-key", str(pair.key), "-subj", subject, "-out", str(csr), cwd=self.dir)
        usages = (["serverAuth"] if server_sans else []) + (["clientAuth"] if client else [])
        ext = [
            "basicConstraints=CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            f"extendedKeyUsage={','.join(usages)}",
            "authorityKeyIdentifier=keyid,issuer",
        ]
        if server_sans:
            ext.append("subjectAltName=" + ",".join(server_sans))
        extfile = self.dir / f"{name}.ext"
        extfile.write_text("\n".join(ext) + "\n")
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(self.pair.cert),
            "-CAkey",
            str(self.pair.key),
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            str(extfile),
            "-out",
            str(pair.cert),
            cwd=self.dir,
        )
        csr.unlink()
        extfile.unlink()
        return pair


def service_account_keys(directory: Path) -> KeyPair:
    """The key pair the apiserver signs service-account tokens with (cert slot holds the public key)."""
    key = directory / "sa.key"
    pub = directory / "sa.pub"
    _ec_key(key)
    _openssl("ec", "-in", str(key), "-pubout", "-out", str(pub), cwd=directory)
    return KeyPair(pub, key)
