// The status line (busy / result text) and the error line shared by the views.

/** Create both lines inside `parent`; the error line is hidden until an error is shown. */
export function createStatus(parent) {
  const line = document.createElement("div");
  line.className = "cs-status";
  const error = document.createElement("div");
  error.className = "cs-error";
  error.setAttribute("role", "alert");
  error.hidden = true;
  parent.append(line, error);
  return {
    line,
    error,
    busy(isBusy) {
      parent.dataset.busy = String(isBusy);
    },
    show(text) {
      line.textContent = text;
    },
    showError(message) {
      error.textContent = `Error: ${message}`;
      error.hidden = false;
    },
    clearError() {
      error.textContent = "";
      error.hidden = true;
    },
  };
}
