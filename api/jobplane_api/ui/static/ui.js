// Jobplane's own few lines. A form re-rendered with its field errors comes back as 400: let htmx swap it
// in like a success, so the errors show next to their fields.
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.xhr.status === 400) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
