"""The OpenAPI documents give every error answer its shape, so a client (and
schemathesis' response_schema_conformance) can hold the gateway to it."""

from __future__ import annotations

from tests.conftest import Gateway

DOCUMENTS = ("", "/api/v2", "/api", "/remittance")


async def test_every_error_answer_has_a_schema(gateway: Gateway) -> None:
    shapeless = []
    errors = 0
    for prefix in DOCUMENTS:
        document = (await gateway.client.get(f"{prefix}/openapi.json")).json()
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                for status, answer in operation["responses"].items():
                    if int(status) < 400:
                        continue
                    errors += 1
                    for media_type, content in answer.get("content", {}).items():
                        if not content.get("schema"):
                            shapeless.append(
                                f"{method.upper()} {prefix}{path} {status} {media_type}"
                            )
    assert errors > 100
    assert shapeless == []


async def test_refund_errors_are_problems(gateway: Gateway) -> None:
    document = (await gateway.client.get("/openapi.json")).json()
    for path, method in (
        ("/v1/payments/{payment_id}/refund", "post"),
        ("/v1/payments/{payment_id}/reversal", "post"),
        ("/v1/refunds/{refund_id}", "get"),
        ("/v1/reversals/{reversal_id}", "get"),
    ):
        answers = document["paths"][path][method]["responses"]
        statuses = {int(s) for s in answers if int(s) >= 400}
        expected = {401, 404, 422, 429} | (
            {400, 403, 409, 413, 502, 503} if method == "post" else set()
        )
        assert statuses == expected, (path, sorted(statuses))
        for status in statuses:
            schema = answers[str(status)]["content"]["application/problem+json"]["schema"]
            assert schema["title"] == "Problem", (path, status)
