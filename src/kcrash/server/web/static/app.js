// kcrash dashboard: the only script. It remembers the theme choice (auto, light, dark);
// everything else is plain HTML that works without it.
(function () {
  "use strict";
  var order = ["auto", "light", "dark"];
  function apply(choice) {
    var root = document.documentElement;
    if (choice === "auto") { root.removeAttribute("data-theme"); } else { root.setAttribute("data-theme", choice); }
  }
  var saved = "auto";
  try { saved = localStorage.getItem("kcrash-theme") || "auto"; } catch (e) { saved = "auto"; }
  if (order.indexOf(saved) < 0) { saved = "auto"; }
  apply(saved);
  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("theme");
    if (!button) { return; }
    var labels = (button.getAttribute("data-labels") || "").split("|");
    var show = function (choice) { button.querySelector("span").textContent = labels[order.indexOf(choice)] || choice; };
    show(saved);
    button.addEventListener("click", function () {
      saved = order[(order.indexOf(saved) + 1) % order.length];
      try { localStorage.setItem("kcrash-theme", saved); } catch (e) { /* private mode */ }
      apply(saved);
      show(saved);
    });
  });
}());
