"""The local certificate authority the intercepting proxy signs its certificates with.

One CA per directory, made on first use and kept (``DATA_DIR/ca``, ``--ca-dir``, or without either
a per-user directory, so a client trusts it once):

- ``ca.pem``: the CA certificate, the file clients are told to trust;
- ``ca-key.pem``: its private key, mode 0600 (a looser mode is refused, like ssh does);
- ``truststore.p12``: the same certificate as a Java PKCS#12 truststore (password ``changeit``).

The CA can only vouch for ``aliyuncs.com`` names (a critical name constraint), so even a copied
key is no use against any other site. Leaf certificates are made per hostname, in memory, valid
for two days. Everything is made with ``cryptography``; ECDSA P-256 keys, SHA-256 signatures.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
KEY_FILE = "ca-key.pem"
TRUSTSTORE_FILE = "truststore.p12"
TRUSTSTORE_PASSWORD = "changeit"  # Java's conventional default; it guards no secret here
PERMITTED_DOMAIN = "aliyuncs.com"
CA_VALIDITY = dt.timedelta(days=730)
LEAF_VALIDITY = dt.timedelta(days=2)
BACKDATE = dt.timedelta(hours=1)  # clients whose clock is a little behind still accept a new leaf


class CaError(Exception):
    """The CA directory cannot be used; the message says why in one line."""


def default_ca_dir() -> Path:
    """Without a data dir or ``--ca-dir``: one CA per user, kept, so it is trusted once."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "kf2v-mock" / "ca"


def ca_dir_for(ca_dir: Path | None, data_dir: Path | None) -> Path:
    """``--ca-dir`` if given, else ``DATA_DIR/ca``, else the per-user default."""
    if ca_dir is not None:
        return Path(ca_dir)
    if data_dir is not None:
        return Path(data_dir) / "ca"
    return default_ca_dir()


@dataclass(frozen=True)
class CertificateAuthority:
    directory: Path
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    created: bool = False  # made by this open(), rather than found

    @property
    def cert_path(self) -> Path:
        return self.directory / CA_FILE

    @property
    def key_path(self) -> Path:
        return self.directory / KEY_FILE

    @property
    def truststore_path(self) -> Path:
        return self.directory / TRUSTSTORE_FILE

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    # --- opening ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, directory: Path, now: dt.datetime | None = None) -> "CertificateAuthority":
        """The CA kept in ``directory``, made there first if it holds none. Blocks (file I/O and,
        the first time, key generation): call it off the event loop."""
        directory = Path(directory).expanduser()
        now = now or _utcnow()
        created = False
        if not (directory / CA_FILE).exists():
            created = _create(directory, now)
        authority = cls._load(directory)
        if now >= authority.certificate.not_valid_after_utc:
            raise CaError(f"the kf2v-mock CA in {directory} expired on "
                          f"{authority.certificate.not_valid_after_utc:%Y-%m-%d}; delete that "
                          "directory to make a new one (and trust the new one)")
        return cls(authority.directory, authority.certificate, authority.key, created)

    @classmethod
    def _load(cls, directory: Path) -> "CertificateAuthority":
        cert_path, key_path = directory / CA_FILE, directory / KEY_FILE
        try:
            mode = stat.S_IMODE(key_path.stat().st_mode)
            if mode & 0o077:
                raise CaError(f"{key_path} is readable by others (mode {mode:04o}); "
                              f"chmod 600 it, or delete {directory} to make a new CA")
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except FileNotFoundError as exc:
            raise CaError(f"{directory} holds no complete kf2v-mock CA ({exc.filename} is "
                          "missing); give an empty or new directory") from None
        except (ValueError, TypeError) as exc:
            raise CaError(f"cannot read the kf2v-mock CA in {directory}: {exc}") from None
        except OSError as exc:
            raise CaError(f"cannot read the kf2v-mock CA in {directory}: {exc.strerror}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CaError(f"{key_path} is not the kf2v-mock CA's key")
        return cls(directory, certificate, key)

    # --- issuing -----------------------------------------------------------------------------------
    def issue(self, hostname: str, now: dt.datetime | None = None) -> tuple[bytes, bytes]:
        """A leaf certificate for ``hostname`` (PEM) and its private key (PEM, unencrypted)."""
        now = now or _utcnow()
        key = ec.generate_private_key(ec.SECP256R1())
        ca_key_id = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + LEAF_VALIDITY)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_key_id.value), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return (certificate.public_bytes(serialization.Encoding.PEM),
                key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def _create(directory: Path, now: dt.datetime) -> bool:
    """Make a CA in a private temporary directory beside ``directory`` and rename it into place,
    so a client never sees half a CA and two processes starting at once end up with one. True if
    this call's CA is the one kept."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = _ca_certificate(key, now)
        _write(staging / KEY_FILE, key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()), 0o600)
        _write(staging / CA_FILE, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
        truststore = pkcs12.serialize_java_truststore(
            [pkcs12.PKCS12Certificate(certificate, b"kf2v-mock")],
            serialization.BestAvailableEncryption(TRUSTSTORE_PASSWORD.encode()))
        _write(staging / TRUSTSTORE_FILE, truststore, 0o644)
        staging.chmod(0o755)
        try:
            os.rename(staging, directory)  # replaces an empty directory; fails on a full one
        except OSError:
            if (directory / CA_FILE).exists():
                return False  # another process made it first: use theirs
            raise CaError(f"{directory} exists and holds no kf2v-mock CA; give an empty or new "
                          "directory") from None
        return True
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _ca_certificate(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kf2v-mock (offline DashScope emulator)"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"kf2v-mock local CA {secrets.token_hex(4)}"),
    ])
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.NameConstraints(permitted_subtrees=[x509.DNSName(PERMITTED_DOMAIN)],
                                            excluded_subtrees=None), critical=True)
        .add_extension(key_id, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(key_id),
                       critical=False)
        .sign(key, hashes.SHA256())
    )


def _key_usage(digital_signature: bool = False, key_cert_sign: bool = False,
               crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=key_cert_sign, crl_sign=crl_sign, encipher_only=False,
                         decipher_only=False)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, mode)  # whatever the umask said


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
