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
    lines = ["`python benchmarks/transformers.py --reference ...` (lxt heatmaps made by "
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


TABLES = {"coverage": coverage, "transformers": transformers}


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
