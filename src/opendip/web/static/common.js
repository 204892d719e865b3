// Behaviour shared by every page, as a static file (the Content-Security-Policy allows no
// inline script): links marked data-back go back one page.
document.addEventListener("click", function (event) {
  var link = event.target.closest("[data-back]");
  if (link && window.history.length > 1) {
    event.preventDefault();
    window.history.back();
  }
});

// Chinese file pickers (templates/_file_input.html): show the chosen file names.
document.addEventListener("change", function (event) {
  var input = event.target;
  if (!input.matches || !input.matches(".file-pick input[type=file]")) return;
  var names = Array.prototype.map.call(input.files, function (f) { return f.name; });
  input.parentNode.querySelector(".file-pick-name").textContent =
    names.length ? names.join("、") : "未选择文件";
});
