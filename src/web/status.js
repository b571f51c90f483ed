// Refreshes the status part of the page in place (no full reload), every data-refresh
// seconds; served as a same-origin file so the Content-Security-Policy needs no inline code.
"use strict";
(function () {
  var main = document.getElementById("status");
  if (!main || !window.fetch) return;
  var every = Math.max(2, parseInt(main.getAttribute("data-refresh"), 10) || 30) * 1000;
  var failed = false;
  function refresh() {
    fetch("/ui/status", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        main.innerHTML = html;
        failed = false;
        document.body.classList.remove("stale");
      })
      .catch(function () {
        // Keep what is shown, and say that it is no longer being updated.
        if (!failed) document.body.classList.add("stale");
        failed = true;
      })
      .then(function () {
        setTimeout(refresh, every);
      });
  }
  setTimeout(refresh, every);
})();
