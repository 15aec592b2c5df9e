"""The HTML report: one self-contained file (inline CSS, SVG and a little JS, no external
assets), readable from a 390 px phone to a laptop. Tables are top-N so that a 50,000-wheel scan
stays well under 5 MB; the full data is in the jsonl export."""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

from ..rules.tags import policy_order
from ..rules.verdict import FINDING_MEANINGS, FINDINGS, STATUS_MEANINGS, STATUSES
from .demangle import humanize, short
from .records import ALL, Summary, basename, project_name, reasons_of, summarise

if TYPE_CHECKING:
    from pathlib import Path

    from ..mirror.store import MirrorFindings, StoreReader, WheelFilter

__all__ = ["render_html", "write_html"]

#: rows of the violations table, projects with a section, wheels listed per project
TABLE_ROWS = 1500
PROJECT_SECTIONS = 40
PROJECT_WHEELS = 40

_CSS = """
*{box-sizing:border-box}body{font:15px/1.45 system-ui,sans-serif;margin:0;padding:12px;
color:#1d2330;background:#fff;max-width:1200px;margin:auto}h1{font-size:1.4em}
h2{font-size:1.15em;border-bottom:1px solid #ccd;padding-bottom:4px;margin-top:1.6em}
.cards{display:flex;flex-wrap:wrap;gap:8px}.card{border:1px solid #ccd;border-radius:6px;
padding:6px 10px;min-width:100px}.card b{display:block;font-size:1.3em}
.mislabelled b{color:#b3261e}.ok b{color:#1b6e34}.error b{color:#8a5a00}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:12px}
figure{margin:0;border:1px solid #e0e0ea;border-radius:6px;padding:6px}
figcaption{font-weight:600;margin-bottom:4px}svg{width:100%;height:auto;max-height:340px;display:block}
.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;width:100%;
font-size:.9em}th,td{border-bottom:1px solid #e4e4ee;padding:4px 6px;text-align:left;
vertical-align:top}th{background:#f3f3f8;cursor:pointer;position:sticky;top:0}
td.n,th.n{text-align:right}code{font-size:.92em;word-break:break-all}
input[type=search]{width:100%;max-width:420px;padding:6px;font-size:1em;margin:6px 0}
details summary{cursor:pointer}.muted{color:#667}td.wrap{overflow-wrap:anywhere;min-width:12em}
@media (max-width:600px){body{padding:6px;font-size:14px}td,th{padding:3px}
.wide{display:none}}
"""

_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
  var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows),asc=th.dataset.asc!=='1';
  th.dataset.asc=asc?'1':'0';var num=th.classList.contains('n');
  rows.sort(function(x,y){var a=x.cells[i].dataset.k||x.cells[i].textContent,
   c=y.cells[i].dataset.k||y.cells[i].textContent;
   if(num){a=parseFloat(a)||0;c=parseFloat(c)||0;return asc?a-c:c-a}
   return asc?a.localeCompare(c):c.localeCompare(a)});
  rows.forEach(function(r){b.appendChild(r)})})})});
document.querySelectorAll('input[data-filter]').forEach(function(inp){
 var t=document.getElementById(inp.dataset.filter);inp.addEventListener('input',function(){
  var q=inp.value.toLowerCase();Array.prototype.forEach.call(t.tBodies[0].rows,function(r){
   r.style.display=r.textContent.toLowerCase().indexOf(q)<0?'none':''})})});
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _svg_text(
    x: float, y: float, text: str, anchor: str = "start", size: int = 11, extra: str = ""
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"'
        f' fill="#1d2330"{extra}>{_e(text)}</text>'
    )


def heatmap_svg(s: Summary) -> tuple[str, str] | None:
    """(caption, chart): claimed policy (rows) vs minimal honest policy (columns); red where the
    claim is older than what the binaries need, green where it holds; shade by log count. None
    with no judged Linux wheel."""
    rows, cols = s.matrix_axes()
    if not rows:
        return None
    left, top, cw, ch = 120, 100, 64, 26
    w = left + cw * len(cols) + 70  # room for the last rotated column label
    h = top + ch * len(rows) + 10
    peak = max(s.matrix.values())
    parts = [
        f'<svg viewBox="0 0 {w} {h}" role="img" class="chart heatmap" '
        f'aria-label="claimed vs minimal tag heatmap">'
    ]
    for j, c in enumerate(cols):
        x = left + j * cw + cw / 2
        parts.append(
            _svg_text(x, top - 8, c, "start", 10, f' transform="rotate(-40 {x:.1f} {top - 8})"')
        )
    for i, r in enumerate(rows):
        y = top + i * ch
        parts.append(_svg_text(left - 6, y + ch / 2 + 4, r, "end", 10))
        for j, c in enumerate(cols):
            n = s.matrix.get((r, c), 0)
            x = left + j * cw
            if n:
                lie = c == "none" or policy_order(c) > policy_order(r)
                op = 0.25 + 0.75 * math.log1p(n) / math.log1p(peak)
                fill = "#c62828" if lie else "#2e7d32"
                parts.append(
                    f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" '
                    f'fill="{fill}" fill-opacity="{op:.2f}"><title>{_e(r)} claimed, '
                    f"{_e(c)} minimal: {n}</title></rect>"
                )
                parts.append(_svg_text(x + cw / 2, y + ch / 2 + 4, str(n), "middle", 11))
            else:
                parts.append(
                    f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="#f1f1f5"/>'
                )
    parts.append("</svg>")
    return "Claimed tag vs minimal honest tag", "".join(parts)


def bars_svg(items: list[tuple[str, float, str]], label: str, *, percent: bool) -> str:
    """Vertical bars: (x label, value, tooltip), at least one."""
    bw, left, top, hgt = 44, 36, 14, 150
    w = max(left + bw * len(items) + 10, 360)
    h = top + hgt + 40
    peak = 1.0 if percent else max(v for _, v, _ in items) or 1.0
    parts = [
        f'<svg viewBox="0 0 {w} {h}" role="img" class="chart bars" aria-label="{_e(label)}">',
        f'<line x1="{left}" y1="{top + hgt}" x2="{w - 5}" y2="{top + hgt}" stroke="#889"/>',
    ]
    for k in (0.0, 0.5, 1.0):
        y = top + hgt - k * hgt
        tick = f"{k * 100:.0f}%" if percent else f"{k * peak:.0f}"
        parts.append(_svg_text(left - 4, y + 4, tick, "end", 9))
    for i, (name, val, tip) in enumerate(items):
        bh = hgt * (val / peak if peak else 0)
        x = left + i * bw + 6
        parts.append(
            f'<rect x="{x}" y="{top + hgt - bh:.1f}" width="{bw - 12}" '
            f'height="{bh:.1f}" fill="#3f51b5"><title>{_e(tip)}</title></rect>'
        )
        parts.append(_svg_text(x + (bw - 12) / 2, top + hgt + 14, name, "middle", 10))
        shown = f"{val * 100:.0f}%" if percent else f"{val:.0f}"
        parts.append(_svg_text(x + (bw - 12) / 2, top + hgt - bh - 3, shown, "middle", 9))
    parts.append("</svg>")
    return "".join(parts)


def years_svg(s: Summary) -> tuple[str, str] | None:
    """(caption, chart) of the mislabelled share by year: by upload year where the source gave
    upload times, else by the files' modification year, said so; None with neither."""
    years, by = s.years, "upload year"
    if not years:
        years, by = s.mtime_years, "file modification year (the source gave no upload times)"
    if not years:
        return None
    items = []
    for year in sorted(years):
        c = years[year]
        n = c["ok"] + c["mislabelled"]
        items.append((year, c["mislabelled"] / n if n else 0.0,
                      f"{year}: {c['mislabelled']} of {n} judged wheels mislabelled"))  # fmt: skip
    return f"Mislabelled share by {by}", bars_svg(items, f"mislabelled share by {by}",
                                                  percent=True)  # fmt: skip


def glibc_svg(s: Summary) -> tuple[str, str] | None:
    """(caption, chart) of the required glibc of judged wheels; None when none has one."""
    if not s.glibc:
        return None

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split(".") if x.isdigit())

    items = [
        (v, float(s.glibc[v]), f"glibc {v}: {s.glibc[v]} wheels") for v in sorted(s.glibc, key=key)
    ]
    return "Required glibc", bars_svg(items, "distribution of required glibc", percent=False)


def _legend() -> str:
    """What each status and finding kind means (the table docs/findings.md is generated from);
    each kind has an anchor the evidence links to."""
    rows = "".join(
        f"<tr><td><code>{_e(st)}</code></td><td>{_e(m)}</td></tr>"
        for st, m in STATUS_MEANINGS.items()
    )
    kinds = "".join(
        f'<tr id="kind-{_e(kind)}"><td>{_e(sev)}</td><td><code>{_e(kind)}</code></td>'
        f'<td class="wrap">{_e(m)}</td></tr>'
        for sev, kind, m in FINDINGS
    )
    return (
        '<section id="legend"><h2>Legend</h2><p class="muted">The same definitions are in '
        "<code>docs/findings.md</code> of the wheelscan source.</p>"
        '<div class="scroll"><table><thead><tr><th>status</th><th>meaning</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
        '<div class="scroll"><table><thead><tr><th>severity</th><th>finding</th><th>meaning</th>'
        f"</tr></thead><tbody>{kinds}</tbody></table></div></section>"
    )


def _symbol(raw: str) -> str:
    """A symbol name demangled, its raw name on hover."""
    shown = short(raw)
    if shown == raw:
        return f"<code>{_e(raw)}</code>"
    return f'<code title="{_e(raw)}">{_e(shown)}</code>'


def _kind_link(kind: object) -> str:
    """A finding's kind, linked to its legend entry (a kind this version does not know is
    shown unlinked)."""
    k = str(kind or "")
    if k in FINDING_MEANINGS:
        return f'<a href="#kind-{_e(k)}" title="{_e(FINDING_MEANINGS[k])}">{_e(k)}</a>'
    return _e(k)


def _detail(detail: object) -> str:
    """A finding's detail with its symbol names demangled, the raw text on hover."""
    raw = str(detail or "")
    shown = humanize(raw)
    return _e(raw) if shown == raw else f'<span title="{_e(raw)}">{_e(shown)}</span>'


def _violation_rows(store: StoreReader, filters: WheelFilter, limit: int) -> list[str]:
    out: list[str] = []
    for row in store.wheels(filters, status="mislabelled"):
        if len(out) >= limit:
            break
        v = row.verdict or {}
        claims = " ".join(str(c) for c in v.get("claims") or ())
        reasons = "; ".join(reasons_of(v)[:6])
        ev = "".join(
            f"<li>{_kind_link(f.get('kind'))} <code>{_e(f.get('member') or '')}</code> "
            f"{_detail(f.get('detail'))}</li>"
            for f in (v.get("findings") or [])[:12]
            if isinstance(f, dict) and f.get("severity") in ("violation", "warning")
        )
        mt = v.get("minimal_tag") or ""
        out.append(
            f"<tr><td>{_e(row.project or '')}</td><td><code>{_e(row.filename)}</code></td>"
            f'<td class="wide">{_e(claims)}</td><td>{_e(mt)}</td>'
            f"<td>{_e(v.get('required_glibc') or '')}</td>"
            f'<td class="wide">{_e((row.upload_time or "")[:10])}</td>'
            f"<td><details><summary>{_e(reasons or 'violations')}</summary><ul>{ev}</ul>"
            "</details></td></tr>"
        )
    return out


def render_html(
    store: StoreReader,
    filters: WheelFilter = ALL,
    *,
    source: str = "",
    summary: Summary | None = None,
    mf: MirrorFindings | None = None,
) -> str:
    s = summary or summarise(store, filters)
    mf = mf or store.mirror_findings(filters, 50)
    h: list[str] = []
    a = h.append
    a(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>wheelscan report: {s.total} wheels</title><style>{_CSS}</style></head><body>"
    )
    a(
        f'<h1>wheelscan report</h1><p class="muted">{s.total} wheels'
        f"{' from ' + _e(source) if source else ''}. Tables are top-N; the full per-wheel data "
        "is in the <code>jsonl</code> export (<code>wheelscan report --format jsonl</code>).</p>"
    )
    a('<section id="summary"><h2>Summary</h2><div class="cards">')
    for st in STATUSES:
        if s.status[st]:
            a(f'<div class="card {st}"><b>{s.status[st]}</b>{_e(st)}</div>')
    a("</div>")
    if s.yanked_mislabelled:
        a(f"<p>{s.yanked_mislabelled} of the mislabelled wheels are yanked.</p>")
    a("</section>")
    # a chart with nothing to show is left out, not drawn empty
    charts = [c for c in (heatmap_svg(s), years_svg(s), glibc_svg(s)) if c is not None]
    if charts:
        a('<section id="charts"><h2>Charts</h2><div class="charts">')
        for caption, svg in charts:
            a(f"<figure><figcaption>{_e(caption)}</figcaption>{svg}</figure>")
        a("</div></section>")

    a(
        '<section id="breakdown"><h2>By architecture and libc</h2><div class="scroll">'
        '<table class="sortable"><thead><tr><th>arch</th><th>libc</th><th class="n">wheels</th>'
        '<th class="n">mislabelled</th></tr></thead><tbody>'
    )
    for (arch, libc), cnt in sorted(s.arch_libc.items()):
        a(
            f'<tr><td>{_e(arch)}</td><td>{_e(libc)}</td><td class="n">{sum(cnt.values())}</td>'
            f'<td class="n">{cnt["mislabelled"]}</td></tr>'
        )
    a("</tbody></table></div>")
    if s.abi3:
        a(f'<h2 id="abi3">abi3 claims</h2><p class="muted">{sum(s.abi3.values())} judged abi3 '
          f"wheels, {s.abi3_broken} whose claim breaks: the claimed python tag next to the "
          "oldest the binaries allow (none: a symbol outside the Stable ABI).</p>"
          '<div class="scroll"><table class="sortable"><thead><tr><th>claimed</th>'
          '<th>honest</th><th class="n">wheels</th></tr></thead><tbody>')  # fmt: skip
        for (claim, honest), k in sorted(s.abi3.items()):
            a(f'<tr><td>{_e(claim)}</td><td>{_e(honest)}</td><td class="n">{k}</td></tr>')
        a("</tbody></table></div>")
    a(
        '<h2>Most common reasons</h2><p class="muted">One row per cause (a library\'s version '
        "node, an external library, ...), with the symbols that need it; hover a symbol for its "
        'raw name.</p><div class="scroll"><table class="sortable" id="reasons">'
        '<thead><tr><th>cause</th><th class="n">symbols</th><th>e.g.</th>'
        '<th class="n">wheels</th><th class="n">projects</th></tr></thead><tbody>'
    )
    for r in s.top_reasons(50):
        ex = ", ".join(_symbol(e) for e in r.examples)
        a(f'<tr><td>{_e(r.cause)}</td><td class="n">{r.symbols or ""}{"+" if r.capped else ""}'
          f'</td><td class="wrap">{ex}</td><td class="n">{r.wheels}</td>'
          f'<td class="n">{r.projects}</td></tr>')  # fmt: skip
    a("</tbody></table></div>")
    if s.errors:  # an empty table says nothing
        a(
            '<h2>Errors by reason</h2><div class="scroll"><table class="sortable"><thead><tr>'
            '<th class="n">wheels</th><th>reason</th></tr></thead><tbody>'
        )
        for why, ne in sorted(s.errors.items(), key=lambda kv: (-kv[1], kv[0]))[:50]:
            a(f'<tr><td class="n">{ne}</td><td>{_e(why)}</td></tr>')
        a("</tbody></table></div>")
    a("</section>")

    n_mis = s.status["mislabelled"]
    rows = _violation_rows(store, filters, TABLE_ROWS)
    a(
        f'<section id="violations"><h2>Mislabelled wheels ({len(rows)} of {n_mis} shown)</h2>'
        '<input type="search" placeholder="filter: project, tag, symbol..." '
        'data-filter="vtable" aria-label="filter the table">'
        '<div class="scroll"><table class="sortable" id="vtable"><thead><tr><th>project</th>'
        '<th>wheel</th><th class="wide">claims</th><th>minimal</th><th>glibc</th>'
        '<th class="wide">uploaded</th><th>why (evidence)</th></tr></thead><tbody>'
    )
    h.extend(rows)
    a("</tbody></table></div></section>")

    a('<section id="projects"><h2>Projects with the most mislabelled wheels</h2>')
    top = s.top_projects(PROJECT_SECTIONS)
    a(
        '<div class="scroll"><table class="sortable"><thead><tr><th>project</th>'
        '<th class="n">mislabelled</th><th class="n">wheels</th></tr></thead><tbody>'
    )
    for p, m, n in top:
        a(
            f'<tr><td><a href="#p-{_e(p)}">{_e(p)}</a></td><td class="n">{m}</td>'
            f'<td class="n">{n}</td></tr>'
        )
    a("</tbody></table></div>")
    for p, m, n in top:
        a(
            f'<section class="project" id="p-{_e(p)}"><h3>{_e(p)}: {m} of {n} wheels '
            "mislabelled</h3><ul>"
        )
        listed = 0
        for row in store.wheels(filters, status="mislabelled", project=p):
            v = row.verdict or {}
            a(
                f"<li><code>{_e(row.filename)}</code>: "
                f"{_e('; '.join(reasons_of(v)[:4]) or 'violations')}"
                f"{' (could claim ' + _e(v['minimal_tag']) + ')' if v.get('minimal_tag') else ''}"
                "</li>"
            )
            listed += 1
            if listed >= PROJECT_WHEELS:
                break
        if m > listed:
            a(f'<li class="muted">and {m - listed} more</li>')
        a("</ul></section>")
    a("</section>")

    how = (
        "CRC-32 and size"
        if mf.identity == "crc32"
        else "size plus every parsed ELF fact (the store keeps no content digest)"
    )
    a(f'<section id="mirror"><h2>Mirror-wide findings</h2><p class="muted">Identity: {how}.</p>')
    a(
        f"<h3>Same soname vendored with different contents ({mf.conflicts_total})</h3>"
        '<div class="scroll"><table class="sortable" id="conflicts"><thead><tr><th>soname</th>'
        '<th class="n">variants</th><th class="n">projects</th><th class="n">wheels</th>'
        "<th>examples (project, wheel, bytes)</th></tr></thead><tbody>"
    )
    for c in mf.conflicts:
        ex = "".join(
            f"<li>{_e(project_name(p))}: <code>{_e(f)}</code> ({z})</li>" for p, f, z in c.examples
        )
        a(
            f'<tr><td><code>{_e(c.soname)}</code></td><td class="n">{c.variants}</td>'
            f'<td class="n">{c.projects}</td><td class="n">{c.wheels}</td>'
            f"<td><details><summary>{len(c.examples)} shown</summary><ul>{ex}</ul></details>"
            "</td></tr>"
        )
    a("</tbody></table></div>")
    nb, copies, extra = mf.repeated
    a(
        f'<p id="repeated">{nb} binaries appear in two or more wheels: {copies} extra copies, '
        f"{extra / 1e6:.1f} MB.</p>"
    )
    a(
        f"<h3>Identical binaries in several projects ({mf.duplicates_total})</h3>"
        '<div class="scroll"><table class="sortable" id="duplicates"><thead><tr><th>binary</th>'
        '<th class="n">bytes</th><th class="n">wheels</th><th class="n">projects</th>'
        "<th>projects (some)</th></tr></thead><tbody>"
    )
    for d in mf.duplicates:
        a(
            f'<tr><td><code>{_e(basename(d.member))}</code></td><td class="n">{d.size}</td>'
            f'<td class="n">{d.wheels}</td><td class="n">{d.projects}</td>'
            f"<td>{_e(', '.join(project_name(p) for p in d.examples))}</td></tr>"
        )
    a("</tbody></table></div></section>")
    h.append(_legend())
    a(f"<script>{_JS}</script></body></html>\n")
    return "".join(h)


def write_html(
    store: StoreReader, filters: WheelFilter, out: Path, *, source: str = ""
) -> None:
    text = render_html(store, filters, source=source)
    out.write_text(text, encoding="utf-8")
