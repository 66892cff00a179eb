"""The simulator's initiator certificate: what Safaricom's public-key certificate is to
Daraja. The gateway encrypts the initiator password with it (``daraja/b2c.py``,
``security_credential``); the simulator decrypts with the private key it keeps.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

# Safaricom's certificates carry 2048-bit RSA keys.
KEY_SIZE = 2048
CERTIFICATE_NAME = "pesaswitch Daraja simulator"


class SimulatorKeys:
    """One key pair per simulator, made on first use: generating one costs tens of
    milliseconds, and most simulators (every STK-only test) never need it."""

    def __init__(self) -> None:
        self._key: rsa.RSAPrivateKey | None = None
        self._certificate_pem: bytes | None = None

    def _private_key(self) -> rsa.RSAPrivateKey:
        if self._key is None:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
        return self._key

    @property
    def certificate_pem(self) -> bytes:
        if self._certificate_pem is None:
            key = self._private_key()
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CERTIFICATE_NAME)])
            now = datetime.now(UTC)
            certificate = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=3650))
                .sign(key, hashes.SHA256())
            )
            self._certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
        return self._certificate_pem

    def decrypt(self, security_credential: str) -> str | None:
        """The password inside a SecurityCredential, or None when it is not one of ours."""
        try:
            ciphertext = base64.b64decode(security_credential, validate=True)
            plain = self._private_key().decrypt(ciphertext, padding.PKCS1v15())
            return plain.decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
