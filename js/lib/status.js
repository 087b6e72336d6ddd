// @ts-check
// The status line (busy / result text), the error line and the delayed busy indicator shared by the views.

/** How long work must be pending before the busy indicator appears (ms). */
export const BUSY_DELAY = 150;

/**
 * Create the lines inside `parent`. `busy(true)` marks `parent` busy at once (data-busy) and shows
 * the spinner only if it is still busy after `delay` ms, so quick answers do not flicker.
 */
export function createStatus(parent, delay = BUSY_DELAY) {
  const line = document.createElement("div");
  line.className = "cs-status";
  const error = document.createElement("div");
  error.className = "cs-error";
  error.setAttribute("role", "alert");
  error.hidden = true;
  const spinner = document.createElement("div");
  spinner.className = "cs-busy";
  spinner.title = "computing…";
  spinner.hidden = true;
  parent.append(spinner, line, error);
  let timer = null;
  return {
    root: parent,
    line,
    error,
    spinner,
    busy(isBusy) {
      parent.dataset.busy = String(isBusy);
      if (!isBusy) {
        clearTimeout(timer);
        timer = null;
        spinner.hidden = true;
      } else if (timer === null && spinner.hidden) {
        timer = setTimeout(() => {
          timer = null;
          spinner.hidden = false;
        }, delay);
      }
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
