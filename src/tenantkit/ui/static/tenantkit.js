// tenantkit pages: progressive enhancement only; every action works without this file (and without htmx).
(function () {
  "use strict";
  function copy(button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) { return; }
    var status = document.getElementById("tk-status");
    var done = function () {
      button.textContent = "Copied";
      if (status) { status.textContent = "Copied to the clipboard."; }
    };
    field.select();
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        if (document.execCommand("copy")) { done(); }
      });
    } else if (document.execCommand("copy")) {
      done();
    }
  }
  // Run on the first load and again on each part htmx swaps in (htmx:load): a button is wired only once.
  function enhance(root) {
    var buttons = root.querySelectorAll("[data-copy]");
    for (var i = 0; i < buttons.length; i++) {
      if (buttons[i].hasAttribute("data-tk-ready")) { continue; }
      buttons[i].setAttribute("data-tk-ready", "");
      buttons[i].hidden = false;
      buttons[i].addEventListener("click", function (event) { copy(event.currentTarget); });
    }
    var secret = root.querySelector("#tk-secret-title");
    if (secret) { secret.focus(); }
  }
  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:load", function (event) { enhance(event.detail.elt); });
  // An answer that is not one of the pages (the host's sign-in page, its error page) has no #tk-content to
  // swap in: load it as the browser would have without JavaScript, instead of blanking the page.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (!event.detail.shouldSwap || xhr.responseText.indexOf('id="tk-content"') !== -1) { return; }
    event.detail.shouldSwap = false;
    var asked = new URL(event.detail.requestConfig.path, window.location.href).href;
    if (event.detail.requestConfig.verb === "get" || (xhr.responseURL && xhr.responseURL !== asked)) {
      window.location.assign(xhr.responseURL || asked);
    } else {
      window.location.reload();
    }
  });
})();
