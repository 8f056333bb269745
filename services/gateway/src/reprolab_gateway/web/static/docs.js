// The API docs page (Swagger UI): its "filter by tag" box comes without a label, so a screen reader
// announces an unnamed text field. Name it once Swagger UI has drawn it (it may redraw it later).
(() => {
  const name = (root) => {
    for (const input of root.querySelectorAll("input.operation-filter-input:not([aria-label])")) {
      input.setAttribute("aria-label", "Filter operations by tag");
    }
  };
  new MutationObserver(() => name(document)).observe(document.body, { childList: true, subtree: true });
  name(document);
})();
