// pesaswitch payment button. Put the snippet from the dashboard's "Payment links" page
// where the button should appear:
//   <script src="https://GATEWAY/pay/button.js" data-pesaswitch-link="SLUG" async></script>
// It inserts a link styled as a button that opens the hosted page GATEWAY/pay/SLUG in a
// new tab. No build step, no other file, nothing loaded from anyone else.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src) return;
  var slug = script.getAttribute("data-pesaswitch-link") || "";
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(slug)) return;
  var origin = new URL(script.src).origin;
  var button = document.createElement("a");
  button.href = origin + "/pay/" + encodeURIComponent(slug);
  button.target = "_blank";
  button.rel = "noopener";
  button.textContent = script.getAttribute("data-label") || "Pay with M-Pesa";
  button.className = "pesaswitch-pay-button";
  var s = button.style;
  s.display = "inline-block";
  s.padding = "0.6em 1.2em";
  s.borderRadius = "6px";
  s.background = script.getAttribute("data-color") || "#2e7d32";
  s.color = "#fff";
  s.font = "600 16px/1.2 system-ui, sans-serif";
  s.textDecoration = "none";
  script.parentNode.insertBefore(button, script);
})();
