// Progressive enhancement only: every page works without this file.
// <time datetime="...Z"> elements show the browser's local time; their title keeps UTC.
(function () {
  "use strict";
  function localize() {
    var nodes = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      var when = new Date(node.getAttribute("datetime"));
      if (isNaN(when.getTime())) { continue; }
      var dateOnly = node.textContent.trim().length <= 14;
      var options = dateOnly
        ? { year: "numeric", month: "short", day: "numeric" }
        : { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
      if (!node.title) { node.title = node.textContent.trim(); }
      node.textContent = when.toLocaleString(undefined, options);
    }
  }
  // The top-up page: clicking a preset amount fills the amount field.
  function presets() {
    var buttons = document.querySelectorAll("[data-amount]");
    var field = document.getElementById("amount");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (event) {
        if (field) { field.value = event.currentTarget.getAttribute("data-amount"); }
      });
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { localize(); presets(); });
  } else { localize(); presets(); }
})();
