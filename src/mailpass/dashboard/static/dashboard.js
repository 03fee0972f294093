// The dashboard's only script: the copy button next to a new API key.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy-target]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copyTarget);
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    field.select(); // no clipboard access (plain http on another host): select it to copy by hand
    document.execCommand("copy");
  }
  const note = button.parentElement.querySelector(".copied");
  if (note) note.hidden = false;
});
