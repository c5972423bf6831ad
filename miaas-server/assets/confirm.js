// Asks before a form marked `data-confirm` is sent (remove, drain, rotate...).
// A file rather than `onsubmit` attributes: the Content-Security-Policy runs no
// inline script. One listener on the document also covers forms that live
// updates swap in.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form instanceof HTMLFormElement ? form.getAttribute("data-confirm") : null;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
