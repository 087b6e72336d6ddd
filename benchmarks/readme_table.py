"""Write the README's generated tables from the benchmarks' JSON results, so no figure there is typed by hand.

Each table sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` markers in README.md and names the command
that produced its figures.

    python benchmarks/readme_table.py            # every table whose results exist
"""
import json
from pathlib import Path

from _common import RESULTS
from coverage import RULE_NAMES

README = Path(__file__).parent.parent / "README.md"


def _number(value, digits=4):
    if isinstance(value, float) and abs(value) >= 10 ** digits:
        return f"{value:.0f}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return "" if value is None else str(value)


def coverage(data):
    rows = data["rows"]
    explained = [r for r in rows if r.get("explained") == "yes"]
    lines = [
        f"{len(explained)} of {len(rows)} models explained (`python benchmarks/coverage.py --skip-large`; random "
        "weights without additive constants, 64 px for CNNs, the native size for transformers; 2 threads).",
        "",
        "| model | sum/logit (default) | sum/logit (LRP-0) | logits err | CRP err | zennit err | time s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if r.get("explained") != "yes":
            lines.append(f"| {r['model']} | refused: {r.get('error', '')[:160]} | | | | | |")
            continue
        zennit = r.get("zennit err")
        for name, words in RULE_NAMES.items():  # results written before the rules were named in words
            zennit = zennit.replace(name, words) if isinstance(zennit, str) else zennit
        zennit = _number(zennit, 2) if isinstance(zennit, float) else str(zennit).replace("n/a: ", "n/a (needs ") + (
            ")" if str(zennit).startswith("n/a") else "")
        lines.append(f"| {r['model']} | {_number(r['sum/logit'])} | {_number(r.get('LRP-0 sum/logit'), 6)} | "
                     f"{_number(r['logits err'], 2)} | {_number(r['CRP err'], 2)} | {zennit} | "
                     f"{_number(r['time s'], 2)} |")
    return "\n".join(lines)


def transformers(data):
    rows = data["rows"]
    command = data["info"]["command"]  # the reference files' paths shortened to "...", other options kept
    options = command.split(".safetensors")[-1] if ".safetensors" in command else ""
    lines = [f"`{command.split(' --reference ')[0]} --reference ...{options}` (lxt heatmaps made by "
             "`benchmarks/reference/lxt_vit.py` in lxt's own venv); torchvision `vit_b_16`, 224 px.", "",
             "| comparison | figure |", "| --- | --- |"]
    for r in rows:
        if "rel L2 vs lxt" in r:
            lines.append(f"| CP-LRP vs lxt 2.1, gammas {r['gammas']}, {r['dtype']} ({r['reference']}) | relative L2 "
                         f"{_number(r['rel L2 vs lxt'], 2)}; sum/logit {_number(r['sum/logit'], 6)} (lxt "
                         f"{_number(r['lxt sum/logit'], 6)}) |")
        elif "sum/logit" in r:
            rule_set = "" if "AttnLRP" in r["reference"] else "CP-LRP "
            lines.append(f"| {rule_set}heatmap sum / logit, {r['reference']} | {_number(r['sum/logit'], 6)} |")
        elif "best s" in r:
            lines.append(f"| {r['what']}: best / median | {_number(r['best s'], 3)} s / "
                         f"{_number(r['median s'], 3)} s |")
    for name, value in data["info"].get("ratios", {}).items():
        lines.append(f"| {name} | {_number(value, 3)}x |")
    return "\n".join(lines)


def _pair(row, prefix, unit="s", digits=3):
    """"best / median unit" of a side's columns."""
    best, median = f"{prefix} best s".lstrip(), f"{prefix} median s".lstrip()
    return f"{_number(row[best], digits)} / {_number(row[median], digits)} {unit}"


def _ratio(row, prefix="speedup"):
    return f"{_number(row[f'{prefix} (best)'], 3)}x / {_number(row[f'{prefix} (median)'], 3)}x"


def _header(info, what):
    """The line above a table: the command that produced it and how it was measured."""
    threads = info["threads"]
    return (f"`{info['command']}` ({threads} thread{'s' * (threads != 1)} on {info.get('cpus', '?')} CPU cores shared "
            f"with other jobs, torch {info['torch']}; {what}):")


def crp(data):
    info = data["info"]
    lines = [_header(info, f"zennit-crp {info.get('reference zennit_crp', '?')} with zennit "
                           f"{info.get('reference zennit', '?')} in its own venv; per model and size one warm-up "
                           f"round, then {info['rounds']} rounds with the sides in turn; best / median"), "",
             "| model, layer | image | conceptscope, K = 64: best / median | "
             "zennit-crp batched `generate` (batch size) | speed-up on best / median | "
             "heatmaps vs zennit-crp (rel. L2) | extra concept / gradient pass per sample | extra peak memory |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in data["rows"]:
        reference = (f"{_pair(r, 'zennit-crp')} ({r['reference batch']})" if "zennit-crp best s" in r else "")
        speed = _ratio(r) if "speedup (best)" in r else ""
        lines.append(f"| {r['model']} `{r['layer']}` | {r['px']} px | {_pair(r, 'ours')} | {reference} | {speed} | "
                     f"{_number(r.get('rel diff vs zennit-crp'), 2)} | "
                     f"{_number(r['extra concept / gradient per sample (best)'], 3)}x / "
                     f"{_number(r['extra concept / gradient per sample (median)'], 3)}x | "
                     f"{_number(r['extra peak GB'], 3)} GB |")
    return "\n".join(lines)


def atlas(data):
    info = data["info"]
    rows = data["rows"]
    lines = [_header(info, "builds in turn after a warm-up round; best / median"), "",
             "| model | scheme | seconds: best / median | samples/s (median) | vs 1 layer (median) | CPU s (median) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "vs reference (best)" in r:
            continue
        lines.append(f"| {r['model']} | {r['scheme']} | {_pair(r, '')} | {_number(r['samples/s'], 3)} | "
                     f"{_number(r['vs 1 layer (median)'], 3)}x | {_number(r['cpu s'], 3)} |")
    reference = [r for r in rows if "vs reference (best)" in r]
    if reference:
        lines += ["", f"Against zennit-crp {info.get('zennit-crp', '?')}'s `FeatureVisualization.run` (own venv; same "
                  f"VGG16 weights, {info.get('samples')} images, k = {info.get('k')}, batch {info.get('batch')}; "
                  f"{info.get('rounds')} rounds in turn after a warm-up round; best / median):", "",
                  "| scheme | conceptscope: best / median | zennit-crp | speed-up on best / median | "
                  "samples/s (median) | CPU time ratio |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in reference:
            lines.append(f"| {r['scheme']} | {_pair(r, '')} | {_pair(r, 'reference')} | {_ratio(r, 'vs reference')} "
                         f"| {_number(r['samples/s'], 3)} vs {_number(r['reference samples/s'], 3)} | "
                         f"{_number(r['cpu vs reference'], 3)}x |")
    return "\n".join(lines)


def atlas_vit(data):
    info = data["info"]
    rows = data["rows"]
    lines = [_header(info, f"the two builds in turn, {info.get('rounds')} rounds after a warm-up round; best / median"),
             "", "| model | layers | seconds: best / median | images/s: median (best) | vs CNN (median) | CPU s |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['scheme'].split('(')[1].split(')')[0]} | {_pair(r, '')} | "
                     f"{_number(r['samples/s'], 3)} ({_number(r['samples/s (best)'], 3)}) | "
                     f"{_number(r['vs CNN (median)'], 3)}x | {_number(r['cpu s'], 3)} |")
    return "\n".join(lines)


def _clicks(data, setting, layer):
    """A table of click latencies (benchmarks/widgets.py), with the ``layer`` column and the best click where the
    rows have them."""
    rows = data["rows"]
    best = bool(rows) and "best_ms" in rows[0]
    columns = ["model", "input", *(["layer"] if layer else []), "condition", "clicks", "p50 / p95",
               *(["best"] if best else []), "compute (median)", "p50 / compute"]
    lines = [_header(data["info"], setting), "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for r in rows:
        cells = [r["model"], r["input"], *([f"`{r['layer']}`"] if layer else []), r["condition"], r["clicks"],
                 f"{_number(r['p50_ms'], 3)} / {_number(r['p95_ms'], 3)} ms",
                 *([f"{_number(r['best_ms'], 3)} ms"] if best else []), f"{_number(r['compute_ms'], 3)} ms",
                 f"{_number(r['p50/compute'], 3)}x"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def widgets(data):
    return _clicks(data, "clicks in turn with the kernel's own compute of one conditional heatmap, after a warm-up; "
                         "chromium headless", layer=True)


def widgets_segment(data):
    """The segment case of benchmarks/widgets.py: click on a predicted segment -> its heatmap on screen."""
    return _clicks(data, "clicks alternating between two predicted segments, in turn with the kernel's own compute of "
                         "one segment's heatmap, after a warm-up; nothing cached; chromium headless; target p50 <= 300 "
                         "ms", layer=False)


def methods_speed(data):
    info = data["info"]
    lines = [_header(info, f"mass accuracy, rank accuracy and pointing game on the same arrays; Quantus in its own "
                           f"venv; one warm-up round, then {info['rounds']} rounds in turn"), "",
             "| what | best | median | spread |", "| --- | --- | --- | --- |"]
    for r in data["rows"]:
        if r["library"].startswith("speed-up"):
            lines.append(f"| {r['library']} | {_number(r['best_ms'], 3)}x | {_number(r['median_ms'], 3)}x | |")
        else:
            lines.append(f"| {r['library']}, {r['images']} maps | {_number(r['best_ms'], 3)} ms | "
                         f"{_number(r['median_ms'], 3)} ms | {_number(r.get('spread_ms'), 2)} ms |")
    return "\n".join(lines)


def faithfulness(data):
    info = data["info"]
    lines = [_header(info, f"Quantus in its own venv; {info['rounds']} rounds in turn; best / median"), "",
             "| metric | images x steps | conceptscope: best / median | Quantus | speed-up on best / median | "
             "largest curve difference / largest value |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in data["rows"]:
        lines.append(f"| {r['metric'].replace('_', ' ')} | {r['images']} x {r['steps']} | {_pair(r, 'ours')} | "
                     f"{_pair(r, 'quantus')} | {_ratio(r, 'speed-up')} | "
                     f"{_number(r['max |diff| / max |value|'], 2)} |")
    return "\n".join(lines)


def semantics(data):
    info = data["info"]
    lines = [_header(info, "timings: sides in turn after a warm-up round"), "", "| part | case | value | note |",
             "| --- | --- | --- | --- |"]
    for r in data["rows"]:
        if r["part"] not in ("embedding", "search", "scores"):
            continue  # the ground-truth figures are quoted in the figures table
        lines.append(f"| {r['part']} | {r['case']} | {_number(r['value'], 3)} {r['unit']} | {r['note']} |")
    return "\n".join(lines)


TABLES = {"coverage": coverage, "transformers": transformers, "crp_cpu": crp, "atlas_cpu": atlas,
          "atlas_vit_cpu": atlas_vit, "widgets": widgets, "widgets_segment": widgets_segment,
          "methods_speed": methods_speed, "faithfulness": faithfulness, "semantics_cpu": semantics,
          "semantics_embedding_cpu": semantics}


def main():
    text = README.read_text()
    for name, make in TABLES.items():
        path = RESULTS / f"{name}.json"
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        if not path.exists() or start not in text:
            print(f"skipped {name}: {'no ' + str(path) if not path.exists() else 'no marker in README.md'}")
            continue
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = f"{before}{start}\n{make(json.loads(path.read_text()))}\n{end}{after}"
        print(f"wrote the {name} table")
    README.write_text(text)


if __name__ == "__main__":
    main()
