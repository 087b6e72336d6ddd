// @ts-check
// Text shown for numbers in the views.

/** Relevance with 4 significant digits and no trailing zeros, e.g. 0.0123 or -1.235e-7. */
export function formatRelevance(value) {
  return String(Number(Number(value).toPrecision(4)));
}

/** A share (fraction) as a percentage with one decimal, e.g. 0.1234 -> "12.3 %"; "–" for missing values. */
export function formatShare(share) {
  return share == null || !Number.isFinite(share) ? "–" : `${(share * 100).toFixed(1)} %`;
}

/** A concept's name: layer and channel, e.g. "features.15 #12". */
export function conceptLabel(layer, channel) {
  return `${layer} #${channel}`;
}

/** A concept's name with its label when it has one, e.g. "stripes (features.15 #12)". */
export function conceptName(layer, channel, label) {
  return label ? `${label} (${conceptLabel(layer, channel)})` : conceptLabel(layer, channel);
}
