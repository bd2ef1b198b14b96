"""RSA keys and APK signatures.

apk-tools v2 verifies `.SIGN.RSA.<key>` entries as PKCS#1 v1.5 signatures over the SHA-1 digest of the signed
gzip stream, and `.SIGN.RSA256.<key>` entries over its SHA-256 digest. `<key>` is the public key's file name in
the keyring (`/etc/apk/keys`): melange names it after the private key file plus `.pub`, e.g. `melange.rsa` signs
as `.SIGN.RSA.melange.rsa.pub`. Private keys never leave this process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from melange_bk.errors import ApkError

SHA1 = "sha1"
SHA256 = "sha256"
_PREFIX = {SHA1: ".SIGN.RSA.", SHA256: ".SIGN.RSA256."}
DEFAULT_KEY_BITS = 4096


def _hash(algorithm: str) -> hashes.HashAlgorithm:
    if algorithm == SHA1:
        return hashes.SHA1()
    if algorithm == SHA256:
        return hashes.SHA256()
    raise ApkError(f"unknown signature digest {algorithm!r} (use sha1 or sha256)")


@dataclass(frozen=True, eq=False)
class SigningKey:
    """A loaded private key and the key name its signatures carry (`<private key file name>.pub`)."""

    key_name: str
    private_key: rsa.RSAPrivateKey
    algorithm: str = SHA1

    @property
    def signature_name(self) -> str:
        return _PREFIX[self.algorithm] + self.key_name

    def public_pem(self) -> bytes:
        return public_pem(self.private_key)

    def sign(self, data: bytes) -> bytes:
        """PKCS#1 v1.5 signature over the digest of `data`."""
        return self.private_key.sign(data, padding.PKCS1v15(), _hash(self.algorithm))

    def sign_digest(self, digest: bytes) -> bytes:
        """PKCS#1 v1.5 signature over a digest computed elsewhere (streaming)."""
        algo = _hash(self.algorithm)
        return self.private_key.sign(digest, padding.PKCS1v15(), utils.Prehashed(algo))


@dataclass(frozen=True)
class Signature:
    """One `.SIGN.*` entry as read from a package or index."""

    entry_name: str
    algorithm: str
    key_name: str
    value: bytes


def parse_signature_name(entry_name: str) -> Optional[Tuple[str, str]]:
    """`.SIGN.RSA256.k.rsa.pub` -> ("sha256", "k.rsa.pub"); None for any other name."""
    for algorithm in (SHA256, SHA1):
        prefix = _PREFIX[algorithm]
        if entry_name.startswith(prefix) and len(entry_name) > len(prefix):
            return algorithm, entry_name[len(prefix) :]
    return None


def signature_segment(
    members: Sequence[Tuple[str, bytes]], what: str, path: Optional[str] = None
) -> Optional[Tuple[Signature, ...]]:
    """The signatures of a package's or index's first gzip member, given as its (entry name, content) pairs; None
    when that member is not a signature segment (its first entry is no `.SIGN.*`). `what` names the segment in
    the error about an entry that is not a signature."""
    if not members or not members[0][0].startswith(".SIGN."):
        return None
    signatures = []
    for name, value in members:
        parsed = parse_signature_name(name)
        if parsed is None:
            raise ApkError(f"unexpected entry {name!r} in {what}", path=path)
        signatures.append(Signature(name, parsed[0], parsed[1], value))
    return tuple(signatures)


def generate_private_key(bits: int = DEFAULT_KEY_BITS) -> rsa.RSAPrivateKey:
    if bits < 2048:
        raise ApkError(f"RSA keys must have at least 2048 bits, not {bits}")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`), as melange's and abuild's keygen write it."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    """SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`), the form apk-tools reads from /etc/apk/keys."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_keypair(private_path: str, bits: int = DEFAULT_KEY_BITS) -> Tuple[str, str]:
    """Writes `<private_path>` (mode 0600) and `<private_path>.pub`; refuses to overwrite either."""
    public_path = private_path + ".pub"
    for path in (private_path, public_path):
        if os.path.lexists(path):
            raise ApkError("refusing to overwrite an existing key file", path=path)
    key = generate_private_key(bits)
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_pem(key))
        with open(public_path, "xb") as f:
            f.write(public_pem(key))
    except OSError as e:
        raise ApkError(f"cannot write key: {e.strerror}", path=e.filename or private_path) from None
    return private_path, public_path


def load_signing_key(path: str, algorithm: str = SHA1, passphrase: Optional[bytes] = None) -> SigningKey:
    """Loads a PEM RSA private key; its signatures are named after the file (`<basename>.pub`)."""
    _hash(algorithm)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ApkError(f"cannot read signing key: {e.strerror}", path=path) from None
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError) as e:
        raise ApkError(f"not a usable PEM private key ({e})", path=path) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ApkError("signing key is not an RSA key", path=path)
    return SigningKey(key_name=os.path.basename(path) + ".pub", private_key=key, algorithm=algorithm)


def load_public_key(data: bytes, path: Optional[str] = None) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise ApkError(f"not a PEM public key ({e})", path=path) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ApkError("public key is not an RSA key", path=path)
    return key


@dataclass(frozen=True, eq=False)
class Keyring:
    """Public keys by file name, like /etc/apk/keys."""

    keys: Tuple[Tuple[str, rsa.RSAPublicKey], ...]

    def get(self, name: str) -> Optional[rsa.RSAPublicKey]:
        for key_name, key in self.keys:
            if key_name == name:
                return key
        return None

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(name for name, _ in self.keys)


def load_keyring(directory: str) -> Keyring:
    """Every regular `*.pub` file in `directory` (not recursive)."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        raise ApkError(f"cannot read keyring: {e.strerror}", path=directory) from None
    keys: Dict[str, rsa.RSAPublicKey] = {}
    for name in names:
        path = os.path.join(directory, name)
        if not name.endswith(".pub") or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            keys[name] = load_public_key(f.read(), path=path)
    return Keyring(tuple(sorted(keys.items())))


def keyring_from_pems(pems: Dict[str, bytes]) -> Keyring:
    return Keyring(tuple(sorted((name, load_public_key(pem, path=name)) for name, pem in pems.items())))


def verify(key: rsa.RSAPublicKey, algorithm: str, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data, padding.PKCS1v15(), _hash(algorithm))
    except InvalidSignature:
        return False
    return True


def verify_any(
    signatures: Tuple[Signature, ...], keyring: Keyring, data: bytes, path: Optional[str] = None
) -> Signature:
    """The first signature a key of the same name in `keyring` verifies over `data`, or ApkError (as apk-tools,
    a signature is only checked against the key it names)."""
    if not signatures:
        raise ApkError("not signed: no .SIGN.RSA/.SIGN.RSA256 entry", path=path)
    problems = []
    for sig in signatures:
        key = keyring.get(sig.key_name)
        if key is None:
            problems.append(f"no key {sig.key_name!r} in the keyring")
        elif verify(key, sig.algorithm, sig.value, data):
            return sig
        else:
            problems.append(f"{sig.entry_name} does not verify with key {sig.key_name!r}")
    raise ApkError("signature check failed: " + "; ".join(problems), path=path)
