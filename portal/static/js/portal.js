/* IOP Audit Portal: the little JavaScript the tablet needs (htmx does the rest).
 *
 * Signature pads: the canvas is sized by CSS and its backing store scaled by devicePixelRatio,
 * so ink lands exactly under the finger at any DPR. A resize or rotation clears the pad (its
 * old strokes no longer fit) and disables submit, so a cleared pad can never count as signed.
 * The server still judges the PNG; this only keeps honest mistakes from being sent.
 */
(function () {
  "use strict";

  function sizeCanvas(canvas, pad) {
    var ratio = Math.max(window.devicePixelRatio || 1, 1);
    var rect = canvas.getBoundingClientRect();
    canvas.width = Math.round(rect.width * ratio);
    canvas.height = Math.round(rect.height * ratio);
    canvas.getContext("2d").scale(ratio, ratio);
    pad.clear();
  }

  function setupForm(form) {
    if (form.dataset.padReady) return;
    var canvas = form.querySelector("canvas.pad");
    if (!canvas || typeof SignaturePad === "undefined") return;
    form.dataset.padReady = "1";
    var pad = new SignaturePad(canvas, { minWidth: 1, maxWidth: 3, penColor: "#10203a" });
    var submit = form.querySelector("[data-pad-submit]");
    var png = form.querySelector("input[name=signature_png]");
    var strokes = form.querySelector("input[name=strokes]");

    function reset() {
      sizeCanvas(canvas, pad);
      png.value = "";
      strokes.value = "";
      if (submit) submit.disabled = true;
    }
    pad.addEventListener("endStroke", function () {
      if (submit) submit.disabled = pad.isEmpty();
    });
    var clear = form.querySelector("[data-pad-clear]");
    if (clear) clear.addEventListener("click", reset);
    form.querySelectorAll("[data-pad-cancel]").forEach(function (button) {
      button.addEventListener("click", function () {
        var panel = document.getElementById("panel");
        if (panel) panel.innerHTML = "";
        document.body.classList.remove("signing");
        if (opener) {
          var row = document.getElementById(opener);
          var target = row && (row.querySelector(".btn-sign") || row.querySelector("select"));
          if (target) target.focus();
          opener = null;
        }
      });
    });
    // Rotation or resize: the backing store must be rebuilt, which empties the pad.
    var lastW = canvas.getBoundingClientRect().width;
    var onResize = function () {
      if (!document.body.contains(canvas)) { window.removeEventListener("resize", onResize); return; }
      var w = canvas.getBoundingClientRect().width;
      if (w !== lastW) { lastW = w; reset(); }
    };
    window.addEventListener("resize", onResize);
    window.addEventListener("orientationchange", onResize);
    // Fill the hidden fields just before htmx sends the form.
    form.addEventListener("htmx:configRequest", function (evt) {
      if (pad.isEmpty()) { evt.preventDefault(); return; }
      evt.detail.parameters["signature_png"] = pad.toDataURL("image/png");
      evt.detail.parameters["strokes"] = JSON.stringify(pad.toData());
    });
    reset();
    var overlay = form.closest(".sign-overlay");
    if (overlay) {
      document.body.classList.add("signing");
      // Keyboard and screen-reader users land in the dialog, and Escape leaves it.
      var title = overlay.querySelector("h2");
      if (title) { title.setAttribute("tabindex", "-1"); title.focus(); }
    }
  }

  // While the signing dialog is open, Tab cycles inside it and Escape closes it from anywhere:
  // the page behind must not be reachable (aria-modal alone does not stop the keyboard).
  document.addEventListener("keydown", function (evt) {
    var overlay = document.querySelector(".sign-overlay");
    if (!overlay) return;
    if (evt.key === "Escape") {
      var cancelButton = overlay.querySelector("[data-pad-cancel]");
      if (cancelButton) { evt.preventDefault(); cancelButton.click(); }
      return;
    }
    if (evt.key !== "Tab") return;
    var focusables = Array.prototype.filter.call(
      overlay.querySelectorAll("button, [href], input:not([type=hidden]), select, textarea, [tabindex]"),
      function (el) { return !el.disabled && el.getAttribute("tabindex") !== "-1" && el.offsetParent !== null; });
    if (!focusables.length) { evt.preventDefault(); return; }
    var first = focusables[0], last = focusables[focusables.length - 1];
    var inside = overlay.contains(document.activeElement);
    if (evt.shiftKey && (document.activeElement === first || !inside)) { evt.preventDefault(); last.focus(); }
    else if (!evt.shiftKey && (document.activeElement === last || !inside)) { evt.preventDefault(); first.focus(); }
  });

  // Return focus to the row's sign button when the panel closes.
  var opener = null;
  document.addEventListener("click", function (evt) {
    var btn = evt.target.closest && evt.target.closest(".btn-sign");
    if (btn) opener = btn.closest("tr") ? btn.closest("tr").id : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!document.querySelector(".sign-overlay") && opener) {
      var row = document.getElementById(opener);
      var target = row && (row.querySelector(".btn-sign") || row.querySelector("select"));
      if (target) target.focus();
      opener = null;
    }
  });

  function setupAll(root) {
    (root || document).querySelectorAll("form[data-signature-form]").forEach(setupForm);
    if (!document.querySelector(".sign-overlay")) document.body.classList.remove("signing");
  }

  document.addEventListener("DOMContentLoaded", function () { setupAll(document); });
  document.addEventListener("htmx:load", function (evt) { setupAll(evt.detail.elt.parentNode || document); });
  document.addEventListener("htmx:afterSettle", function () { setupAll(document); });

  // A 5xx (or a dropped connection) is never swapped into the page: say so briefly instead.
  function flash(message) {
    var box = document.getElementById("flash");
    if (!box) return;
    box.innerHTML = "";
    var div = document.createElement("div");
    div.className = "flash flash-error";
    div.setAttribute("role", "alert");
    div.textContent = message;
    box.appendChild(div);
  }
  document.addEventListener("htmx:responseError", function (evt) {
    var status = evt.detail.xhr ? evt.detail.xhr.status : 0;
    if (status >= 500) flash("The portal hit an error (" + status + ") and saved nothing. Please try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    flash("The portal could not be reached. Check the network; nothing was saved.");
  });
  // Long requests (closing a roster renders a PDF): show progress after a moment.
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var el = evt.detail.elt;
    el._slowTimer = setTimeout(function () { el.classList.add("is-busy"); el.setAttribute("aria-busy", "true"); }, 400);
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    var el = evt.detail.elt;
    clearTimeout(el._slowTimer);
    el.classList.remove("is-busy");
    el.removeAttribute("aria-busy");
  });
})();
