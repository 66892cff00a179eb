<?php
// A PayNexus STK Push as its docs show it, pointed at pesaswitch (base URL and key from env).
// PayNexus's docs send KES 100; sandbox accounts take 1-50 KES (PayNexus's own sandbox cap),
// so this sends 40, to its own number (Daraja refuses a second prompt while one is open).
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
    'amount' => 40,
    'phone' => '0746990867',
    'description' => 'Order #12345'
  ])
]);
$response = curl_exec($ch);
$payment = json_decode($response === false ? '' : $response, true);
if (!is_array($payment) || empty($payment['success'])) {
  // PayNexus errors are {success: false, message, error}: say so, and fail.
  fwrite(STDERR, 'PayNexus request failed: ' . ($response === false ? curl_error($ch) : $response) . "\n");
  exit(1);
}
echo $payment['data']['reference'];
