"""The run's merchants: accounts with keys, a Pokea signing key and a webhook endpoint.

Accounts are written straight into the database with the gateway's own services (one
`pesaswitch accounts create` process per account would cost seconds each); the webhook
endpoints are created over the API, as a merchant would.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import Environment
from pesaswitch.compat.common import basic_credentials
from pesaswitch.config import Settings
from pesaswitch.db import create_engine, create_sessionmaker, transaction

# Every eighth account's endpoint answers 410 Gone: it is disabled and its deliveries fail.
GONE_EVERY = 8


@dataclass(frozen=True, slots=True)
class Merchant:
    index: int
    account_id: str
    secret_key: str
    basic_auth: str  # PayHero/UpesiPay: Basic base64(api_username:api_password)
    channel_id: int
    signing_key_pem: bytes  # the merchant's RSA private key for Pokea's signature header

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret_key}"}

    @property
    def gone(self) -> bool:
        return self.index % GONE_EVERY == GONE_EVERY - 1

    def sign(self, text: str) -> str:
        key = serialization.load_pem_private_key(self.signing_key_pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        signature = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()


async def _create(settings: Settings, count: int, seed: int) -> list[Merchant]:
    engine = create_engine(settings)
    made: list[Merchant] = []
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            for index in range(count):
                new = await accounts.create_account(
                    session,
                    secret_key=settings.secret_key,
                    name=f"chaos {seed} merchant {index}",
                    environment=Environment.SANDBOX,
                )
                private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                public_pem = private.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                await accounts.add_signing_key(
                    session, account_id=new.account.id, public_key_pem=public_pem.decode()
                )
                made.append(
                    Merchant(
                        index=index,
                        account_id=new.account.id,
                        secret_key=new.secret_key.key,
                        basic_auth=basic_credentials(new.secret_key.id, new.secret_key.key)[
                            "basic_auth_header"
                        ],
                        channel_id=new.default_channel.id,
                        signing_key_pem=private.private_bytes(
                            serialization.Encoding.PEM,
                            serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption(),
                        ),
                    )
                )
    finally:
        await engine.dispose()
    return made


def create_merchants(settings: Settings, count: int, seed: int) -> list[Merchant]:
    return asyncio.run(_create(settings, count, seed))


def register_endpoints(gateway: str, receiver: str, merchants: list[Merchant]) -> None:
    """One webhook endpoint per merchant on the receiver (``/gone/…`` for the 410 ones)."""
    with httpx.Client(base_url=gateway, timeout=30) as client:
        for merchant in merchants:
            path = "gone" if merchant.gone else "hooks"
            answer = client.post(
                "/v1/webhook-endpoints",
                headers=merchant.bearer,
                json={"url": f"{receiver}/{path}/{merchant.index}"},
            )
            answer.raise_for_status()
