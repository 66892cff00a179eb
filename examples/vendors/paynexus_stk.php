<?php
// A PayNexus STK Push as its docs show it, pointed at pesaswitch (base URL and key from env).
$base = getenv('PAYNEXUS_BASE_URL') ?: 'http://127.0.0.1:8000/api';
$ch = curl_init();
curl_setopt_array($ch, [
  CURLOPT_URL => $base . '/mpesa/payment/initiate',
  CURLOPT_RETURNTRANSFER => true,
  CURLOPT_HTTPHEADER => [
    'X-API-Key: ' . getenv('PAYNEXUS_SECRET_KEY'),
    'Content-Type: application/json'
  ],
  CURLOPT_POST => true,
  CURLOPT_POSTFIELDS => json_encode([
    'amount' => 100,
    'phone' => '0746990866',
    'description' => 'Order #12345'
  ])
]);
$response = curl_exec($ch);
$payment = json_decode($response, true);
echo $payment['data']['reference'];
