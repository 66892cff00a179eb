"""Collect one sandbox payment and print how it ended: the SDK's first payment as a script.

    PESASWITCH_API_KEY=sk_test_… PESASWITCH_BASE_URL=http://127.0.0.1:8000 \
        python sdk/python/examples/first_payment.py 254708374149 10
"""

from __future__ import annotations

import os
import sys

from pesaswitch_sdk import MpesaError, Pesaswitch, PesaswitchError, WaitTimeoutError


def main(phone: str, amount: int) -> int:
    base_url = os.environ.get("PESASWITCH_BASE_URL", "http://127.0.0.1:8000")
    with Pesaswitch(api_key=os.environ["PESASWITCH_API_KEY"], base_url=base_url) as client:
        try:
            payment = client.payments.create(amount=amount, phone=phone)
            payment = client.payments.wait_for_final(payment.id, timeout=60)
        except WaitTimeoutError as timed_out:
            print(f"{timed_out.payment.id} is still pending; check it again later")
            return 2
        except MpesaError as error:
            # M-Pesa refused or did not answer; the payment it created, if any, says how.
            ended = error.payment.status if error.payment else "not created"
            print(f"M-Pesa: {error.code}: {error.detail} (payment: {ended})")
            return 1
        except PesaswitchError as error:
            print(f"refused: {error}")
            return 1
    print(payment.id, payment.status, payment.mpesa_receipt or payment.result_desc)
    return 0 if payment.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
