// The result page's live log: an entry the table already has is not added again. A stream resumes by
// itself after its last id (EventSource's Last-Event-ID); this covers a stream htmx had to open anew.
document.addEventListener("htmx:sseBeforeMessage", (event) => {
  const id = event.detail.lastEventId;
  if (event.detail.type === "log" && id && document.getElementById(`log-${id}`)) {
    event.preventDefault();
  }
});
