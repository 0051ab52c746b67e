// Keyboard use of the console: j/k (or arrows) move through the queue, Enter opens, "/" jumps to
// the filters; on an application, Escape goes back to the queue. Links and forms work without it.
(function () {
  "use strict";
  function typing(event) {
    var tag = event.target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll("table.queue tbody tr[data-href]"));
  var selected = rows.length ? 0 : -1;
  function select(index) {
    if (!rows.length) { return; }
    selected = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach(function (row, i) { row.classList.toggle("selected", i === selected); });
    rows[selected].scrollIntoView({ block: "nearest" });
  }
  rows.forEach(function (row, i) {
    row.addEventListener("click", function (event) {
      if (event.target.tagName !== "A") { window.location.href = row.getAttribute("data-href"); }
    });
    row.addEventListener("mouseenter", function () { select(i); });
  });
  select(selected);
  document.addEventListener("keydown", function (event) {
    if (typing(event) || event.altKey || event.ctrlKey || event.metaKey) { return; }
    if (rows.length && (event.key === "j" || event.key === "ArrowDown")) { select(selected + 1); event.preventDefault(); }
    else if (rows.length && (event.key === "k" || event.key === "ArrowUp")) { select(selected - 1); event.preventDefault(); }
    else if (rows.length && event.key === "Enter" && selected >= 0) { window.location.href = rows[selected].getAttribute("data-href"); }
    else if (event.key === "/") {
      var first = document.querySelector("#filters select");
      if (first) { first.focus(); event.preventDefault(); }
    } else if (event.key === "Escape" && !rows.length && document.getElementById("actions")) {
      window.location.href = "/console/queue";
    }
  });
})();
