"""How the Daraja client reads answers that carry no Daraja result: whether the push
may have reached the phone decides whether the payment can ever be settled."""

from __future__ import annotations

import httpx
import pytest

from pesaswitch.config import SANDBOX_PASSKEY
from pesaswitch.daraja.client import DarajaApp, DarajaClient
from pesaswitch.daraja.errors import DarajaTechnicalError
from pesaswitch.daraja.wire import StkPushRequest

REQUEST = StkPushRequest(
    business_shortcode="174379", passkey=SANDBOX_PASSKEY, buy_goods=False, amount=5,
    phone="254712345678", party_b="174379", callback_url="https://example.com/cb",
    account_reference="ref", description="desc",
)  # fmt: skip


def client_answering(status: int, body: bytes, content_type: str) -> DarajaClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v1/generate":
            return httpx.Response(200, json={"access_token": "t" * 28, "expires_in": "3599"})
        return httpx.Response(status, content=body, headers={"content-type": content_type})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://d.test")
    return DarajaClient(http, DarajaApp("key", "secret"))


# Found by the chaos run (seed 1): a 503 in front of Daraja left payments pending for ever.
@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (503, b"<html><body>Service Unavailable</body></html>", "text/html"),
        (503, b'{"errorCode": "503.001.01", "errorMessage": "Service Unavailable"}',
         "application/json"),
        (429, b"Too Many Requests", "text/plain"),
    ],
)  # fmt: skip
async def test_turned_away_pushes_were_not_sent(
    status: int, body: bytes, content_type: str
) -> None:
    with pytest.raises(DarajaTechnicalError) as err:
        await client_answering(status, body, content_type).stk_push(REQUEST)
    assert err.value.maybe_sent is False


async def test_an_unexplained_500_may_have_been_sent() -> None:
    # 500.003.1001 "Internal Server Error" proves nothing either way: the prompt may be out.
    body = b'{"errorCode": "500.003.1001", "errorMessage": "Internal Server Error"}'
    with pytest.raises(DarajaTechnicalError) as err:
        await client_answering(500, body, "application/json").stk_push(REQUEST)
    assert err.value.maybe_sent is True
