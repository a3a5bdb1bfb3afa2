"""The report: a table on the terminal, ``verify.json`` and ``verify.md`` (the same table with
the key figures embedded). Files are written atomically."""
import os
from pathlib import Path

from ..io import atomic_write_bytes, atomic_write_json

__all__ = ["JSON_FILE", "MD_FILE", "fmt_value", "verdict_text", "headline", "table_rows",
           "text_table", "write"]

JSON_FILE = "verify.json"
MD_FILE = "verify.md"
FIGURES = "figures"


def fmt_value(measured):
    """``value ± se unit`` of a measured record."""
    v, se = measured.get("value"), measured.get("se")
    if v is None:
        return "—"
    text = f"{v:d}" if isinstance(v, int) else f"{v:.3g}"
    if se is not None:
        text += f" ± {se:.2g}"
    return text


def verdict_text(v):
    """``ok`` / ``FAIL`` for a check; ``holds`` / ``does not hold`` for a conjecture."""
    if v.get("kind", "check") == "conjecture":
        return "holds" if v["ok"] else "does not hold"
    return "ok" if v["ok"] else "FAIL"


def headline(claims):
    """``n of N checks hold`` (and, when there are any, how many conjectures hold)."""
    checks = [v for v in claims if v.get("kind", "check") == "check"]
    conj = [v for v in claims if v.get("kind", "check") == "conjecture"]
    text = f"{sum(v['ok'] for v in checks)} of {len(checks)} checks hold"
    if conj:
        text += (f"; {sum(v['ok'] for v in conj)} of {len(conj)} conjecture"
                 f"{'s' if len(conj) > 1 else ''} of the papers "
                 f"hold{'s' if len(conj) == 1 else ''}")
    return text


def table_rows(verdicts, out):
    """Rows (claim, source, measured, expected/criterion, verdict, run) as strings."""
    rows = []
    for v in verdicts:
        run = v["run"]  # relative to the report folder
        m = v["measured"]
        rows.append([v["id"], v["source"], f"{fmt_value(m)} ({m['unit']})",
                     v["criterion"]["text"], verdict_text(v), run])
    return rows


def text_table(verdicts, out):
    rows = table_rows(verdicts, out)
    head = ["claim", "measured", "criterion", "verdict"]
    body = [[r[0], r[2], r[3], r[4]] for r in rows]
    widths = [min(max(len(x[i]) for x in [head] + body), cap)
              for i, cap in enumerate((48, 52, 30, 7))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    for r in body:
        lines.append("  ".join(c[:w].ljust(w) if i < 3 else c for i, (c, w)
                               in enumerate(zip(r, widths))))
    return "\n".join(lines)


def _made(runs):
    made = sum(r.get("action") in ("ran", "resumed") for r in runs.values())
    if made == len(runs):
        return f"all {made} runs made now"
    return f"{made} of {len(runs)} runs made now, the others reused from the folder"


def _md_escape(text):
    return text.replace("|", "\\|")


def write(out, doc, figures):
    """Write ``verify.json`` (``doc`` as it is) and ``verify.md``.

    Parameters
    ----------
    out : Path
    doc : dict
        ``ok``, ``profile``, ``claims`` (verdict dicts), and ``runs``, ``wall_time_s``,
        ``load`` ... (shown in the header).
    figures : list of (title, path)
        Key figures (paths inside ``out``) embedded below the table.
    """
    out = Path(out)
    atomic_write_json(out / JSON_FILE, doc)
    claims = doc["claims"]
    lines = [f"# meanfield verify: profile `{doc['profile']}`", "",
             f"{headline(claims)}"
             f"{'' if doc['ok'] else ' — **some checks fail**'}. "
             f"Wall time {doc['wall_time_s']:.0f} s ({doc['workers']}; "
             f"{_made(doc['runs'])}), "
             f"load average {doc['load_start']} at the start, {doc['load_end']} at the end; "
             f"meanfield {doc['version']}{', commit ' + doc['commit'] if doc.get('commit') else ''}.",
             "", f"Command: `{doc['command']}`", "",
             "| claim | source | statement | measured | criterion | verdict | run |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for v, r in zip(claims, table_rows(claims, out)):
        verdict = verdict_text(v)
        verdict = verdict if v["ok"] else f"**{verdict}**"
        lines.append("| " + " | ".join(_md_escape(x) for x in
                                         [r[0], r[1], v["statement"], r[2], r[3], verdict,
                                          f"`{r[5]}`"]) + " |")
    lines += ["", "A *check* is what a paper proves or the briefs derive: a failure means the "
              "code or the derivation is wrong, and the command exits 1. A *conjecture* is what "
              "a paper argues informally: the measurement is the finding, reported as holding "
              "or not, and it does not set the exit status."]
    if figures:
        # copied beside the report, so that verify.md, verify.json and figures/ make a
        # self-contained folder (the run folders are large)
        lines += ["", "## Key figures", ""]
        (out / FIGURES).mkdir(exist_ok=True)
        for title, path in figures:
            target = out / FIGURES / f"{Path(path).parent.name}_{Path(path).name}"
            atomic_write_bytes(target, Path(path).read_bytes())
            rel = os.path.relpath(target, out)
            lines += [f"**{title}**", "", f"![{title}]({rel})", ""]
    atomic_write_bytes(out / MD_FILE, ("\n".join(lines) + "\n").encode())
