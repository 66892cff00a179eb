// Follows a pending payment on the hosted page: polls its status and reloads the page
// once it is final. Without JavaScript, a <noscript> meta refresh does the same.
(function () {
  "use strict";
  var card = document.getElementById("payment");
  if (!card || card.dataset.status !== "pending") return;
  var url = card.dataset.poll;
  var started = Date.now();
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (body && body.status !== "pending") {
          window.location.reload();
          return;
        }
        if (body) document.getElementById("message").textContent = body.message;
        // Prompts time out after about a minute; keep asking a little longer than that.
        if (Date.now() - started < 180000) window.setTimeout(poll, 1500);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 1000);
})();
