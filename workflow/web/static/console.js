// gongmo console: the page's only script (no inline script; the CSP forbids it).
// htmx requests carry the session's CSRF token from <body data-csrf>.
document.addEventListener("htmx:configRequest", function (event) {
  var token = document.body.dataset.csrf;
  if (token) { event.detail.headers["X-CSRF-Token"] = token; }
});

// -- ops (contests page): the next deadline's countdown -------------------------------------------
// <span class="countdown" data-due="ms" data-now="ms">: data-now is the server clock's instant when
// the page was written (an injected clock in a rehearsal), so the count runs from it, not from the
// browser's own clock. Same words as the server's (web/office.py countdown).
(function () {
  var loaded = Date.now();
  var WORDS = {
    ko: { d: "일", h: "시간", min: "분", in: function (s) { return s + " 후"; }, ago: function (s) { return s + " 지남"; }, now: "지금", sep: "" },
    en: { d: " d", h: " h", min: " min", in: function (s) { return "in " + s; }, ago: function (s) { return s + " ago"; }, now: "now", sep: "" }
  };
  function span(ms, w) {
    var left = Math.floor(Math.abs(ms) / 60000);
    if (left === 0) { return w.now; }
    var units = [[Math.floor(left / 1440), w.d], [Math.floor(left % 1440 / 60), w.h], [left % 60, w.min]];
    while (units.length && units[0][0] === 0) { units.shift(); }
    var parts = units.slice(0, 2).filter(function (u) { return u[0] > 0; }).map(function (u) { return u[0] + u[1]; });
    return ms > 0 ? w.in(parts.join(" ")) : w.ago(parts.join(" "));
  }
  function tick() {
    var w = WORDS[document.documentElement.lang] || WORDS.ko;
    document.querySelectorAll(".countdown[data-due][data-now]").forEach(function (el) {
      var now = Number(el.dataset.now) + (Date.now() - loaded);
      el.textContent = span(Number(el.dataset.due) - now, w);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector(".countdown")) { tick(); setInterval(tick, 30000); }
  });
})();

// -- evaluator portal: the score sheet's live total ------------------------------------------------
// <form data-sheet> with <input data-points data-max> per criterion and <output data-total
// data-template="{total} / 100점">: the total of what is typed, in hundredths, as the evaluator types.
// A field that is not a plain number in range counts nothing and is marked; the server checks again.
(function () {
  var PLAIN = /^[0-9]{1,4}(\.[0-9]{1,2})?$/;
  function update(form) {
    var cents = 0;
    var any = false;
    form.querySelectorAll("input[data-points]").forEach(function (input) {
      var text = input.value.trim();
      var ok = PLAIN.test(text) && Number(text) <= Number(input.dataset.max);
      input.classList.toggle("suspect", text !== "" && !ok);
      if (ok) { cents += Math.round(Number(text) * 100); any = true; }
    });
    var out = form.querySelector("output[data-total]");
    if (!out) { return; }
    var total = any ? String(cents / 100) : "—";
    out.textContent = out.dataset.template.replace("{total}", total);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-sheet]").forEach(function (form) {
      form.addEventListener("input", function () { update(form); });
      update(form);
    });
  });
})();
