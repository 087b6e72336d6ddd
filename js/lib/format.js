// Text shown for numbers in the views.

/** Relevance with 4 significant digits and no trailing zeros, e.g. 0.0123 or -1.235e-7. */
export function formatRelevance(value) {
  return String(Number(Number(value).toPrecision(4)));
}
