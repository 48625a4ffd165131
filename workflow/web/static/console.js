// gongmo console: the page's only script (no inline script; the CSP forbids it).
// htmx requests carry the session's CSRF token from <body data-csrf>.
document.addEventListener("htmx:configRequest", function (event) {
  var token = document.body.dataset.csrf;
  if (token) { event.detail.headers["X-CSRF-Token"] = token; }
});
