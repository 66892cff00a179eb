"""A PayNexus STK Push with requests, as its docs show it, pointed at pesaswitch."""

import os

import requests

base = os.environ.get("PAYNEXUS_BASE_URL", "http://127.0.0.1:8000/api")
response = requests.post(
    f"{base}/mpesa/payment/initiate",
    headers={"X-API-Key": os.environ["PAYNEXUS_SECRET_KEY"]},
    json={"amount": 100, "phone": "0746990866", "description": "Order #12345"},
    timeout=30,
)
print(response.json())
