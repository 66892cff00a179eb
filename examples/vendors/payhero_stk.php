<?php
// A PayHero / UpesiPay STK Push request, as their docs show it, pointed at pesaswitch:
// only the base URL and the Basic credentials differ (set them in the environment).
$base = getenv('PAYHERO_BASE_URL') ?: 'http://127.0.0.1:8000/api/v2';
$auth = getenv('PAYHERO_BASIC_AUTH');            // "Basic base64(api_username:api_password)"
$channel = (int) (getenv('PAYHERO_CHANNEL_ID') ?: 1);

$curl = curl_init();
curl_setopt_array($curl, array(
  CURLOPT_URL => $base . '/payments',
  CURLOPT_RETURNTRANSFER => true,
  CURLOPT_TIMEOUT => 30,
  CURLOPT_HTTP_VERSION => CURL_HTTP_VERSION_1_1,
  CURLOPT_CUSTOMREQUEST => 'POST',
  CURLOPT_POSTFIELDS => json_encode(array(
    'amount' => 10,
    'phone_number' => '0798766765',
    'channel_id' => $channel,
    'provider' => 'm-pesa',
    'external_reference' => 'INV-009',
    'callback_url' => 'https://example.com/callback.php',
  )),
  CURLOPT_HTTPHEADER => array(
    'Content-Type: application/json',
    'Authorization: ' . $auth,
  ),
));
$response = curl_exec($curl);
curl_close($curl);
echo $response;
