// Behaviour shared by every page, as a static file (the Content-Security-Policy allows no
// inline script): links marked data-back go back one page.
document.addEventListener("click", function (event) {
  var link = event.target.closest("[data-back]");
  if (link && window.history.length > 1) {
    event.preventDefault();
    window.history.back();
  }
});
