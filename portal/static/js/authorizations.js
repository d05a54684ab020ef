/* Authorization forms post as plain forms; recording a move renders and archives a PDF (a
 * second or two), so the button says so and cannot be pressed twice. */
(function () {
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (!form.matches || !form.matches("form[data-busy]")) return;
    var button = form.querySelector("button[type=submit]");
    if (!button) return;
    if (button.disabled) { evt.preventDefault(); return; }
    form.setAttribute("aria-busy", "true");
    setTimeout(function () {  // after the browser has taken the form's values
      button.disabled = true;
      button.textContent = form.getAttribute("data-busy");
    }, 0);
  });
})();
