<?php
// Verify a pesaswitch webhook (Standard Webhooks) in PHP, with no dependency.
// verify_webhook($rawBody, $headers, $secret) returns the decoded event or throws.
function verify_webhook(string $rawBody, array $headers, string $secret, int $tolerance = 300): array
{
    $headers = array_change_key_case($headers, CASE_LOWER);
    $id = $headers['webhook-id'] ?? null;
    $timestamp = $headers['webhook-timestamp'] ?? null;
    $signatures = $headers['webhook-signature'] ?? null;
    if ($id === null || $timestamp === null || $signatures === null) {
        throw new RuntimeException('missing webhook headers');
    }
    if (abs(time() - (int) $timestamp) > $tolerance) {
        throw new RuntimeException('timestamp too far off');
    }
    $key = base64_decode(preg_replace('/^whsec_/', '', $secret), true);
    $expected = base64_encode(hash_hmac('sha256', "$id.$timestamp.$rawBody", $key, true));
    foreach (explode(' ', $signatures) as $entry) {
        [$version, $signature] = array_pad(explode(',', $entry, 2), 2, '');
        if ($version === 'v1' && hash_equals($expected, $signature)) {
            return json_decode($rawBody, true, 512, JSON_THROW_ON_ERROR);
        }
    }
    throw new RuntimeException('no valid signature');
}

// In a receiver: verify_webhook(file_get_contents('php://input'), getallheaders(), $secret).
// `php verify_webhook.php` reads {"body", "headers", "secret"} on stdin (the test suite's use).
if (PHP_SAPI === 'cli' && realpath($argv[0] ?? '') === __FILE__) {
    $input = json_decode(file_get_contents('php://stdin'), true);
    try {
        echo json_encode(verify_webhook($input['body'], $input['headers'], $input['secret'])), "\n";
    } catch (Throwable $error) {
        fwrite(STDERR, $error->getMessage() . "\n");
        exit(1);
    }
}
