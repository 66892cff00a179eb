// Verify a pesaswitch webhook (Standard Webhooks) in Node.js, with no dependency.
// verifyWebhook(rawBody, headers, secret) returns the parsed event or throws.
const crypto = require("node:crypto");

function verifyWebhook(rawBody, headers, secret, toleranceSeconds = 300) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures) throw new Error("missing webhook headers");
  const now = Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(timestamp)) > toleranceSeconds) throw new Error("timestamp too far off");
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = crypto
    .createHmac("sha256", key)
    .update(`${id}.${timestamp}.${rawBody}`)
    .digest();
  for (const entry of signatures.split(" ")) {
    const [version, signature] = entry.split(",");
    const given = Buffer.from(signature || "", "base64");
    if (version === "v1" && given.length === expected.length && crypto.timingSafeEqual(given, expected)) {
      return JSON.parse(rawBody);
    }
  }
  throw new Error("no valid signature");
}

module.exports = { verifyWebhook };

// `node verify_webhook.js` reads {"body", "headers", "secret"} on stdin (the test suite's use).
if (require.main === module) {
  const input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
  try {
    console.log(JSON.stringify(verifyWebhook(input.body, input.headers, input.secret)));
  } catch (error) {
    console.error(error.message);
    process.exit(1);
  }
}
