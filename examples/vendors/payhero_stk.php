<?php
// A PayHero / UpesiPay STK Push request, as their docs show it, pointed at pesaswitch:
// only the base URL and the Basic credentials differ (set them in the environment).
// The amount and number differ from the README's curl on purpose: Daraja (and the
// simulator) fail a second push of the same amount to the same number within 2 minutes.
$base = getenv('PAYHERO_BASE_URL') ?: 'http://127.0.0.1:8000/api/v2';
$auth = getenv('PAYHERO_BASIC_AUTH');            // "Basic base64(api_username:api_password)"
$channel = (int) (getenv('PAYHERO_CHANNEL_ID') ?: 1);
// The local receiver of the README (examples/webhook_receiver.py), not a public host.
$callback = getenv('PAYHERO_CALLBACK_URL') ?: 'http://127.0.0.1:8082/payhero';

$curl = curl_init();
curl_setopt_array($curl, array(
  CURLOPT_URL => $base . '/payments',
  CURLOPT_RETURNTRANSFER => true,
  CURLOPT_TIMEOUT => 30,
  CURLOPT_HTTP_VERSION => CURL_HTTP_VERSION_1_1,
  CURLOPT_CUSTOMREQUEST => 'POST',
  CURLOPT_POSTFIELDS => json_encode(array(
    'amount' => 12,
    'phone_number' => '0798766765',
    'channel_id' => $channel,
    'provider' => 'm-pesa',
    'external_reference' => 'INV-009',
    'callback_url' => $callback,
  )),
  CURLOPT_HTTPHEADER => array(
    'Content-Type: application/json',
    'Authorization: ' . $auth,
  ),
));
$response = curl_exec($curl);
$status = curl_getinfo($curl, CURLINFO_HTTP_CODE);
curl_close($curl);
if ($response === false || $status >= 300) {
  fwrite(STDERR, "PayHero request failed (HTTP $status): $response\n");
  exit(1);
}
echo $response;
