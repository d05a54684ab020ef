/* Shared-tablet lock screen.
 *
 * After the role's idle time without a touch or key press, the page is covered (no patient names
 * stay on an unattended tablet). The server applies the same limit: an htmx request on a locked
 * session answers 401 with X-Portal-Locked and swaps nothing, and this covers the page too.
 * The same user unlocks with their password (POST /unlock, 204): the page behind, with the open
 * roster and any unsaved row, is kept as it was; only its CSRF tokens are replaced, because the
 * server starts a fresh session at every sign-in. "Sign in as someone else" starts clean.
 * While someone works without sending requests (typing times), a keep-alive tells the server.
 */
(function () {
  "use strict";
  var box = document.getElementById("lock-screen");
  if (!box) return;
  var idleMs = Math.max(parseInt(box.dataset.idleSeconds, 10) || 600, 10) * 1000;
  var aliveUrl = box.dataset.aliveUrl;
  var lastActivity = Date.now();
  var lastContact = Date.now();
  var PING_EVERY_MS = Math.min(60000, idleMs / 4);

  function isLocked() { return !box.hidden; }

  function setInert(on) {
    Array.prototype.forEach.call(document.body.children, function (el) {
      if (el !== box && el.tagName !== "SCRIPT") {
        if (on) el.setAttribute("inert", ""); else el.removeAttribute("inert");
      }
    });
  }

  function lock() {
    if (isLocked()) return;
    box.hidden = false;
    document.body.classList.add("locked");
    setInert(true);
    var pw = document.getElementById("lock-password");
    if (pw) { pw.value = ""; pw.focus(); }
  }

  function replaceTokens(token) {
    if (!token) return;
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) meta.setAttribute("content", token);
    var hdrs = document.body.getAttribute("hx-headers");
    if (hdrs) {
      try {
        var parsed = JSON.parse(hdrs);
        parsed["X-CSRFToken"] = token;
        document.body.setAttribute("hx-headers", JSON.stringify(parsed));
      } catch (e) { /* leave it; the next page load brings a fresh one */ }
    }
    document.querySelectorAll('input[name="csrf_token"]').forEach(function (input) { input.value = token; });
  }

  function unlock(token) {
    replaceTokens(token);
    var pw = document.getElementById("lock-password");
    if (pw) pw.value = "";
    var err = document.getElementById("lock-error");
    if (err) err.innerHTML = "";
    box.hidden = true;
    document.body.classList.remove("locked");
    setInert(false);
    lastActivity = lastContact = Date.now();
  }

  function activity() {
    if (isLocked()) return;
    var now = Date.now();
    if (now - lastActivity >= idleMs) { lock(); return; }
    lastActivity = now;
    if (now - lastContact >= PING_EVERY_MS && aliveUrl) {
      lastContact = now;
      fetch(aliveUrl, { credentials: "same-origin", headers: { "HX-Request": "true" } })
        .then(function (resp) {
          if (resp.status === 401 && resp.headers.get("X-Portal-Locked")) lock();
        })
        .catch(function () { /* offline: the idle timer still runs */ });
    }
  }
  ["pointerdown", "keydown", "touchstart", "input"].forEach(function (name) {
    document.addEventListener(name, activity, { capture: true, passive: true });
  });

  function check() {
    if (!isLocked() && Date.now() - lastActivity >= idleMs) lock();
  }
  setInterval(check, 5000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) check(); });

  document.addEventListener("htmx:beforeRequest", function (evt) {
    if (isLocked() && !box.contains(evt.detail.elt)) { evt.preventDefault(); return; }
    lastContact = Date.now();
  });
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var xhr = evt.detail.xhr;
    if (xhr && xhr.status === 401 && xhr.getResponseHeader("X-Portal-Locked")) {
      evt.detail.shouldSwap = false;
      evt.detail.isError = false;
      lock();
    }
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    var xhr = evt.detail.xhr;
    if (evt.detail.elt && evt.detail.elt.id === "lock-form" && xhr && xhr.status === 204) {
      unlock(xhr.getResponseHeader("X-CSRF-Token"));
    }
  });
})();
