// The MCPG console's only script: a copy button beside a credential shown once.
// Pages work without it (the credential is in a read-only field to select and copy).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      field.select();
      var done = function () {
        button.textContent = "Copied";
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          button.textContent = "Select and copy by hand";
        });
      } else {
        button.textContent = "Select and copy by hand";
      }
    });
  });
});
