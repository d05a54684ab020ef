/* IOP Audit Portal: the little JavaScript the tablet needs (htmx does the rest).
 *
 * Signature pads: the canvas is sized by CSS and its backing store scaled by devicePixelRatio,
 * so ink lands exactly under the finger at any DPR. A resize or rotation rebuilds the backing
 * store and redraws the strokes drawn so far, scaled to the new size, so a half-drawn
 * signature survives turning the tablet. The server still judges the PNG; this only keeps
 * honest mistakes from being sent.
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
    return rect;
  }

  // Strokes drawn at (oldW x oldH) CSS pixels, redrawn at (newW x newH).
  function scaledStrokes(data, oldW, oldH, newW, newH) {
    var sx = oldW ? newW / oldW : 1, sy = oldH ? newH / oldH : 1;
    return data.map(function (group) {
      var copy = {};
      Object.keys(group).forEach(function (k) { copy[k] = group[k]; });
      copy.points = group.points.map(function (p) {
        var q = {};
        Object.keys(p).forEach(function (k) { q[k] = p[k]; });
        q.x = p.x * sx;
        q.y = p.y * sy;
        return q;
      });
      return copy;
    });
  }

  function usesPassword(form) {
    var choice = form.querySelector("input[name=sign_method]:checked");
    return !!choice && choice.value === "password";
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

    var box = null;
    function updateSubmit() {
      if (!submit) return;
      submit.disabled = !usesPassword(form) && pad.isEmpty();
      var why = form.querySelector("[data-close-why]");
      if (why) why.hidden = !submit.disabled;
    }
    function reset() {
      box = sizeCanvas(canvas, pad);
      png.value = "";
      strokes.value = "";
      updateSubmit();
    }
    pad.addEventListener("endStroke", updateSubmit);
    var clear = form.querySelector("[data-pad-clear]");
    if (clear) clear.addEventListener("click", reset);
    form.querySelectorAll("[data-sign-method]").forEach(function (radio) {
      radio.addEventListener("change", function () {
        form.querySelectorAll("[data-method-panel]").forEach(function (panel) {
          panel.hidden = panel.getAttribute("data-method-panel") !== (usesPassword(form) ? "password" : "draw");
        });
        if (!usesPassword(form)) {
          // The pad was hidden (zero-sized): size it now that it shows.
          var strokesSoFar = pad.toData();
          reset();
          if (strokesSoFar.length) { pad.fromData(strokesSoFar); updateSubmit(); }
        }
        updateSubmit();
      });
    });
    form.querySelectorAll("[data-pad-cancel]").forEach(function (button) {
      button.addEventListener("click", function () { closeDialog(true); });
    });
    // Rotation or resize: rebuild the backing store and redraw the strokes at the new size.
    var onResize = function () {
      if (!document.body.contains(canvas)) { window.removeEventListener("resize", onResize); return; }
      var rect = canvas.getBoundingClientRect();
      if (!box || (rect.width === box.width && rect.height === box.height)) return;
      var data = pad.toData();
      var old = box;
      box = sizeCanvas(canvas, pad);
      if (data.length && old.width && old.height) {
        pad.fromData(scaledStrokes(data, old.width, old.height, box.width, box.height));
      }
      png.value = "";
      strokes.value = "";
      updateSubmit();
    };
    window.addEventListener("resize", onResize);
    window.addEventListener("orientationchange", onResize);
    // Fill the hidden fields just before htmx sends the form.
    form.addEventListener("htmx:configRequest", function (evt) {
      if (usesPassword(form)) { delete evt.detail.parameters["signature_png"]; return; }
      if (pad.isEmpty()) { evt.preventDefault(); return; }
      evt.detail.parameters["signature_png"] = pad.toDataURL("image/png");
      evt.detail.parameters["strokes"] = JSON.stringify(pad.toData());
    });
    reset();
    var overlay = form.closest(".sign-overlay");
    if (overlay) {
      document.body.classList.add("signing");
      // Browser Back (or the tablet's back gesture) closes the dialog, not the roster.
      pushDialogEntry();
      // Keyboard and screen-reader users land in the dialog, and Escape leaves it.
      var title = overlay.querySelector("h2");
      if (title) { title.setAttribute("tabindex", "-1"); title.focus(); }
    }
  }

  // Close the signing dialog and return focus to the row it was opened from. ``viaHistory``:
  // also drop the history entry the dialog pushed (Cancel/Escape), so Back later leaves the page.
  function closeDialog(viaHistory) {
    var panel = document.getElementById("panel");
    if (panel) panel.innerHTML = "";
    document.body.classList.remove("signing");
    if (viaHistory) dropDialogEntry();
    if (opener) {
      var row = document.getElementById(opener);
      var target = row && (row.querySelector(".btn-sign") || row.querySelector("select"));
      if (target) target.focus();
      opener = null;
    }
  }
  // The history entry the open dialog pushed (at most one). Dropped once, whatever closes the
  // dialog, so one Back never skips past the roster.
  // history.back() is asynchronous: a dialog opened before our own Back has landed pushes its
  // entry only once it has (else the late popstate would close the new dialog).
  var dialogEntry = false, backPending = false, pushWanted = false;
  function pushDialogEntry() {
    if (dialogEntry) return;
    if (backPending) { pushWanted = true; return; }
    history.pushState({ signingDialog: true }, "");
    dialogEntry = true;
  }
  function dropDialogEntry() {
    pushWanted = false;
    if (!dialogEntry) return;
    dialogEntry = false;
    backPending = true;
    history.back();
  }
  window.addEventListener("popstate", function () {
    if (backPending) {  // our own history.back() after the dialog closed
      backPending = false;
      if (pushWanted && document.querySelector(".sign-overlay")) { pushWanted = false; pushDialogEntry(); }
      return;
    }
    if (!dialogEntry) return;
    dialogEntry = false;
    if (document.querySelector(".sign-overlay")) closeDialog(false);
  });

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
    // A signature was taken (the dialog emptied itself): drop its history entry.
    if (!document.querySelector(".sign-overlay")) dropDialogEntry();
    if (!document.querySelector(".sign-overlay") && opener) {
      var row = document.getElementById(opener);
      var target = row && (row.querySelector(".btn-sign") || row.querySelector("select"));
      if (target) target.focus();
      opener = null;
    }
  });

  // Rows and the times form: a change not yet saved is marked plainly, a status that needs no
  // time saves itself, and leaving the page with unsaved changes asks first.
  function markUnsaved(form, why) {
    form.classList.add("is-unsaved");
    var note = form.querySelector("[data-unsaved-note]");
    if (note) {
      note.hidden = false;
      // One plain line next to the fields says what the row still needs (never an error).
      if (note.firstChild && note.firstChild.nodeType === 3) note.firstChild.nodeValue = why || "Not saved yet";
    }
    var row = form.closest("tr");
    if (row) row.classList.add("is-unsaved");
  }
  // What a row still needs before it can be saved: a status that needs a time waits for it
  // (saving without it could only be refused).
  function missingTime(form) {
    var status = form.querySelector("select[name=status]");
    var arrival = form.querySelector("input[name=arrival]");
    var departure = form.querySelector("input[name=departure]");
    if (!status) return null;
    if (status.value === "late" && arrival && !arrival.value) return arrival;
    if (status.value === "left_early" && departure && !departure.value) return departure;
    return null;
  }
  function onEdit(evt) {
    var form = evt.target.closest && evt.target.closest("form[data-track-unsaved]");
    if (!form) return;
    var missing = missingTime(form);
    markUnsaved(form, missing ? (missing.name === "arrival" ? "Enter the arrival time to save"
                                                           : "Enter the time they left to save") : null);
    if (evt.type !== "change" || !form.hasAttribute("data-autosave")) return;
    var status = form.querySelector("select[name=status]");
    if (!status || !status.value) return;
    if (missing) {
      if (evt.target === status) missing.focus();
      return;
    }
    if (typeof htmx !== "undefined") htmx.trigger(form, "submit");
  }
  document.addEventListener("input", onEdit);
  document.addEventListener("change", function (evt) {
    var modality = evt.target.closest && evt.target.closest("[data-modality]");
    if (modality) {
      var form = modality.closest("form");
      form.querySelectorAll("[data-telehealth-only]").forEach(function (el) { el.hidden = modality.value === "in_person"; });
    }
    onEdit(evt);
  });
  // The server sends the tablet elsewhere (e.g. the roster was closed on another device): what
  // was unsaved cannot be saved any more, and the closed view says so; do not ask to stay.
  document.addEventListener("htmx:beforeOnLoad", function (evt) {
    var xhr = evt.detail.xhr;
    if (xhr && xhr.getResponseHeader("HX-Redirect")) {
      document.querySelectorAll("form.is-unsaved").forEach(function (f) { f.classList.remove("is-unsaved"); });
    }
  });
  window.addEventListener("beforeunload", function (evt) {
    if (document.querySelector("form.is-unsaved")) { evt.preventDefault(); evt.returnValue = ""; }
  });

  function setupAll(root) {
    (root || document).querySelectorAll("form[data-signature-form]").forEach(setupForm);
    if (!document.querySelector(".sign-overlay")) document.body.classList.remove("signing");
  }

  // A tablet waking up checks at once whether its roster was closed elsewhere. (An hx-trigger
  // filter expression would need eval, which the CSP and htmx's allowEval:false forbid.)
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible" || typeof htmx === "undefined") return;
    document.querySelectorAll("[data-wake-check]").forEach(function (el) {
      htmx.trigger(el, "portal:wake");
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    setupAll(document);
    var notice = document.querySelector("[data-autofocus]");
    if (notice) notice.focus();
  });
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
