// Copies the text of the element a `data-copy` button names (the commands of
// "Add a node"). A file rather than inline script: the Content-Security-Policy
// runs none. Where the clipboard API is refused, the text is selected and copied
// the older way.
document.addEventListener("click", function (event) {
  var button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
  if (!button) {
    return;
  }
  var source = document.querySelector(button.getAttribute("data-copy"));
  if (!source) {
    return;
  }
  var text = source.textContent;
  var done = function () {
    button.textContent = "Copied";
    button.setAttribute("data-copied", text);
  };
  var fallback = function () {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    if (document.execCommand("copy")) {
      done();
    } else {
      button.textContent = "Press Ctrl+C";
    }
  };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(text).then(done, fallback);
  } else {
    fallback();
  }
});
