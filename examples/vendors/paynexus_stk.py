"""A PayNexus STK Push with requests, as its docs show it, pointed at pesaswitch.

PayNexus's docs send KES 100; sandbox accounts take 1-50 KES (PayNexus's own sandbox cap),
so this sends 30, to its own number (Daraja refuses a second prompt while one is open).
"""

import json
import os

import requests

base = os.environ.get("PAYNEXUS_BASE_URL", "http://127.0.0.1:8000/api")
response = requests.post(
    f"{base}/mpesa/payment/initiate",
    headers={"X-API-Key": os.environ["PAYNEXUS_SECRET_KEY"]},
    json={"amount": 30, "phone": "0746990868", "description": "Order #12345"},
    timeout=30,
)
response.raise_for_status()  # errors are {success: false, message, error}, with a 4xx
print(json.dumps(response.json()))
