// Live updates without reloading: every 2 s, fetch the fleet's fragment
// (same origin, same credentials: works behind replag's TLS and basic auth)
// and swap it in. A failed fetch says so at the top and keeps the last view.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var conn = document.getElementById("conn");
  var updates = 0;
  window.replagLoadedAt = window.replagLoadedAt || Date.now();
  function refresh() {
    fetch("ui/live", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        live.innerHTML = html;
        updates += 1;
        document.body.setAttribute("data-updates", String(updates));
        var title = live.querySelector("[data-title]");
        if (title) { document.title = title.getAttribute("data-title"); }
        conn.textContent = "live: updated " + new Date().toLocaleTimeString();
        conn.className = "";
      })
      .catch(function (e) {
        conn.textContent = "connection to replag lost (" + e.message + "): showing the last view";
        conn.className = "lost";
      });
  }
  setInterval(refresh, 2000);
})();
