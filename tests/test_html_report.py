"""The HTML report: hostile dataset text stays inert, the page is offline, and a real headless Chromium renders it
without console errors (a deliberately broken page proves the error detector works), at 1400 px and at a phone's
390 px without any table pushing the page sideways."""

from __future__ import annotations

import json
import os
import random
import re
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from evaluate.report.html import html_report

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "apt-get update && apt-get install -y chromium"
HOSTILE = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</svg><b id=pwn>svg escape</b>",
    "</style><script>alert(2)</script>",
    "' onmouseover='alert(3)",
    "</title></textarea><svg onload=alert(4)>",
)
URL_TEXT = "see https://evil.example/x.js for details"
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "code", "span", "b", "div",
                "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "i", "svg", "rect", "line", "text",
                "circle", "polyline", "script", "details", "summary", "path", "button"}


def hostile(i: int) -> str:
    return HOSTILE[i % len(HOSTILE)]


def metric(baseline: float, tuned: float, significant: bool) -> dict:
    delta = tuned - baseline
    return {"baseline": baseline, "tuned": tuned, "delta": delta, "ci_low": delta - 0.02, "ci_high": delta + 0.02,
            "p_value": 0.001 if significant else 0.4, "significant": significant, "n_units": 80}


def dataset(task: str, main: str, metrics: dict) -> dict:
    return {"task": task, "rows": 80, "source": f"data/{hostile(4)}.jsonl", "fingerprint": "ab" * 32,
            "main_metric": main, "metrics": metrics}


def embedding_map(rng: random.Random, n: int, method: str) -> dict:
    """15 labels (one hostile), so three are drawn grey; the tuned map is more clustered than the baseline's."""
    labels = [hostile(0) if i % 15 == 0 else f"topic {i % 15}" for i in range(n)]
    centres = {label: (rng.uniform(-5, 5), rng.uniform(-5, 5)) for label in sorted(set(labels))}
    def points(spread: float) -> list[list[float]]:
        return [[centres[lb][0] + rng.gauss(0, spread), centres[lb][1] + rng.gauss(0, spread)] for lb in labels]
    return {"baseline": points(3.0), "tuned": points(1.0), "labels": labels,
            "texts": [f"text {i} {hostile(i)}" for i in range(n)], "method": method}


def scored_pairs(rng: random.Random, n: int, binary: bool) -> list[dict]:
    pairs = []
    for i in range(n):
        gold = float(rng.random() < 0.5) if binary else rng.random()
        pairs.append({"sentence1": f"first {i} {hostile(i)}", "sentence2": f"second {i} {hostile(i + 1)}",
                      "gold": gold, "baseline": 0.3 + 0.3 * gold + rng.gauss(0, 0.15),
                      "tuned": 0.1 + 0.8 * gold + rng.gauss(0, 0.08)})
    return pairs


def ranked(rng: random.Random, q: int) -> dict:
    top = [{"text": URL_TEXT if k == 1 else f"doc {q}-{k} {hostile(q + k)}", "score": 0.9 - 0.1 * k,
            "relevant": k == q % 5} for k in range(5)]
    return {"ndcg@10": rng.random(), "top": top}


def retrieval_details(rng: random.Random) -> dict:
    queries = []
    for q in range(8):
        baseline, tuned = ranked(rng, q), ranked(rng, q + 1)
        queries.append({"query": f"query {q} {hostile(q)}", "relevant": [f"doc {q} {hostile(q + 2)}"],
                        "delta": tuned["ndcg@10"] - baseline["ndcg@10"], "baseline": baseline, "tuned": tuned})
    scores = {m: [rng.gauss(mu, 0.1) for _ in range(60)] for m, mu in (("baseline", 0.5), ("tuned", 0.7))}
    negatives = {m: [rng.gauss(0.2, 0.1) for _ in range(200)] for m in ("baseline", "tuned")}
    deltas = [q["delta"] for q in queries] + [0.0] * 30 + [rng.gauss(0.05, 0.1) for _ in range(42)]
    return {"task": "retrieval", "queries": queries, "positive_scores": scores, "negative_scores": negatives,
            "map": embedding_map(rng, 120, hostile(1)), "per_query_delta": {"metric": "ndcg@10", "values": deltas}}


def reference_rows() -> dict:
    """A keyword row compared with the tuned model (BM25 loses, significantly) and a hybrid row that wins."""
    return {"bm25": {"metrics": {"ndcg@10": 0.45, "mrr@10": 0.55, "recall@100": 0.9}, "description": hostile(3),
                     "vs": {"against": "tuned", "ndcg@10": {**metric(0.52, 0.45, True), "n_resamples": 10000}}},
            "hybrid": {"metrics": {"ndcg@10": 0.56, "mrr@10": 0.62, "recall@100": 0.97}, "description": "RRF",
                       "vs": {"against": "tuned", "ndcg@10": metric(0.52, 0.56, False)}}}


def run_record() -> dict:
    """run.json as train writes it: loss every 10 steps, a dev evaluation every 8, the best at step 16."""
    return {"train": {"rows": 740, "steps": 24, "epoch": 2.0}, "plan": {"batch_size": 64, "precision": "fp32"},
            "best_checkpoint": {"step": 16, "metric": "eval_dev_ndcg@10", "dev_score": 0.93},
            "loss_history": [{"step": s, "loss": 1.0 / s} for s in (2, 6, 10, 14, 18)],
            "dev_history": [{"eval_dev_ndcg@10": 0.9 + s / 1000, "eval_runtime": 1.0, "step": s} for s in (8, 16, 24)]}


def synthetic() -> tuple[dict, dict]:
    """A report and details for an sts, a pair_classification and a retrieval set, full of hostile strings."""
    rng = random.Random(0)
    sts, pairs, retrieval = f"sts {hostile(0)}", f"pairs {hostile(1)}", f"retrieval {hostile(2)}"
    datasets = {
        sts: dataset("sts", "spearman", {"spearman": metric(0.70, 0.82, True), "pearson": metric(0.68, 0.69, False),
                                         hostile(3): metric(0.5, 0.5, False)}),
        pairs: dataset("pair_classification", "ap", {"ap": metric(0.80, 0.74, True), "f1": metric(0.7, 0.71, False)}),
        retrieval: dataset("retrieval", "ndcg@10", {"ndcg@10": metric(0.40, 0.52, True), "mrr@10": metric(0.5, 0.6,
                                                                                                           False),
                                                  "recall@100": metric(0.9, 0.95, False)}),
    }
    datasets[retrieval]["about"] = {"queries": 80, "corpus": 150, "relevant_per_query": {"min": 1, "mean": 1.2,
                                                                                          "max": 3}, "grades": [1]}
    datasets[retrieval]["reference"] = reference_rows()
    report = {"run_dir": f"runs/{hostile(5)}", "base_model": hostile(1), "model_revision": hostile(4),
              "tuned_model": f"runs/x/final/{hostile(2)}",
              "primary": {"dataset": sts, "metric": "spearman", **metric(0.70, 0.82, True), "improved": True,
                          "p_value": 1 / 10001, "n_resamples": 10000},
              "leakage": {pairs: {"shared": 3, "of": 80, "examples": list(HOSTILE[:3])}},
              "encoding": {"baseline": {"seconds": 12.5, "texts": 900, "cached": False},
                           "tuned": {"seconds": 11.0, "texts": 900, "cached": True}},
              "datasets": datasets}
    details = {
        sts: {"task": "sts", "pairs": scored_pairs(rng, 80, binary=False), "map": embedding_map(rng, 150, "PCA")},
        pairs: {"task": "pair_classification", "pairs": scored_pairs(rng, 80, binary=True),
                "map": embedding_map(rng, 150, "UMAP")},
        retrieval: retrieval_details(rng),
    }
    return report, details


@pytest.fixture(scope="module")
def page() -> str:
    return html_report(*synthetic(), run=run_record())


class Elements(HTMLParser):
    """Every start tag and its attributes, as a browser-like tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def test_hostile_strings_are_escaped(page: str) -> None:
    for text in HOSTILE:
        assert text not in page
        assert str(escape(text)) in page, f"{text!r} should be shown (escaped), not dropped"
    assert page.count("<script") == 1 and page.count("</script>") == 1
    # 2 sts scatters, 2 pair histograms, 2 retrieval histograms, 2 x 2 maps (the pairs set's map plots the sts set's
    # texts again: drawn once), 1 per-query histogram, 2 training curves
    assert page.count('<svg class="chart"') == 13 and page.count("<svg") == page.count("</svg>")
    assert "the same texts as the map of" in page
    assert 'id="pwn"' not in page


def test_only_our_own_tags_and_no_event_handlers(page: str) -> None:
    parser = Elements()
    parser.feed(page)
    names = {tag for tag, _ in parser.tags}
    assert names <= ALLOWED_TAGS, names - ALLOWED_TAGS
    assert [tag for tag, _ in parser.tags].count("script") == 1
    for tag, attrs in parser.tags:
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name, value)
            assert not re.search(r"https?:", value or "") and "javascript:" not in (value or ""), (tag, name, value)


def test_page_loads_nothing_from_the_network(page: str) -> None:
    assert re.search(r"""(src|href|xlink:href|url)\s*[=(]\s*["']?\s*https?:""", page, re.IGNORECASE) is None
    assert str(escape(URL_TEXT)) in page
    rest = page.replace(str(escape(URL_TEXT)), "")
    assert re.search(r"https?:|//[a-z]", rest, re.IGNORECASE) is None, "only the dataset's own text may mention a URL"
    assert "@import" not in page and "<link" not in page and "<img" not in page


def test_page_renders_with_missing_details_and_statistics() -> None:
    report, details = synthetic()
    sts, pairs, retrieval = details
    del details[sts], details[pairs]
    details[retrieval] = {"task": "retrieval", "queries": [], "positive_scores": {}, "negative_scores": {},
                          "map": {"baseline": [], "tuned": [], "labels": [], "texts": [], "method": "PCA"}}
    for key in ("ci_low", "ci_high", "p_value", "significant"):
        report["primary"].pop(key)
    report["leakage"], report["model_revision"] = {}, None
    out = html_report(report, details)
    assert "No details recorded" in out and "no significance test" in out and "unpinned" in out
    assert 'class="alert"' not in out and out.count(">no data</text>") == 4  # 2 histograms, 2 maps
    assert "<h2>Training</h2>" not in out  # no run.json, no training section


def test_page_says_what_each_set_is_how_it_moved_and_how_training_went(page: str) -> None:
    retrieval = str(escape(f"retrieval {hostile(2)}"))
    assert "<p>80 queries search a corpus of 150 documents; 1 to 3 (mean 1.2) relevant documents per query.</p>" in page
    assert "recall@100 is uninformative here: k = 100 is at least half of the 150-document corpus" in page
    assert "p &lt; 0.0001 from 10,000 resamples)" in page  # the verdict's p at the resampling floor, one parenthesis
    assert f"No leakage: no text of {retrieval} appears in the training split." in page
    # per-query wins and losses: collapsed, counted over every query, with the relevant document's move
    deltas = synthetic()[1][f"retrieval {hostile(2)}"]["per_query_delta"]["values"]
    won, lost = sum(d > 0 for d in deltas), sum(d < 0 for d in deltas)
    assert len(deltas) == 80 and won + lost == 50  # 30 queries tied
    assert f"<details><summary>Per-query wins and losses: {won} won, 30 tied, {lost} lost of 80 queries" in page
    assert re.search(r'<td class="num" data-label="first relevant, rank">(&gt; 5|\d) → (&gt; 5|\d)</td>', page)
    assert "On ndcg@10 hybrid scores highest (0.5600), then tuned (0.5200), bm25 (0.4500), baseline (0.4000)." in page
    assert "bm25 vs tuned on ndcg@10: Δ -0.0700 (95% CI [-0.0900, -0.0500], p = 0.001 from 10,000 resamples): " \
           "tuned is significantly better." in page
    assert "<p>Plan: 740 training rows, 24 steps, 2 epochs, batch 64, fp32 precision. final/ is the checkpoint of " \
           "step 16, the best dev_ndcg@10 (0.9300) on the dev split.</p>" in page
    assert 'aria-label="training loss"' in page and 'aria-label="dev_ndcg@10 on the dev split"' in page


# --- a real headless Chromium ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"headless Chromium is needed at {CHROMIUM}; install it with: {INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def render(chromium: Path, page: Path, tmp: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """Load ``page`` offline; stdout is the DOM after scripts ran, stderr the browser log with console messages."""
    shot = tmp / "shot.png"
    command = [str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
               "--dump-dom", "--window-size=1280,2000", "--hide-scrollbars", page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=180), shot


def console_messages(stderr: str) -> list[str]:
    """Console lines from Chromium's log.

    Chromium 156 logs every console message, including uncaught exceptions and ``console.error``, as
    ``[pid:tid:time:INFO:CONSOLE:line] "message", source: file:///... (line)``; older builds wrote
    ``INFO:CONSOLE(line)`` or ``ERROR:CONSOLE``. The report's script logs nothing, so any console line is a failure.
    """
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def varied_rows(png: bytes) -> int:
    """How many pixel rows of a PNG are not a single colour (0 for a blank page), using only zlib.

    A one-colour row stays periodic with the pixel size under every PNG filter (None repeats the pixel; Sub, Up,
    Average and Paeth leave zeros or a repeated difference after the first pixel), so an aperiodic row has content.
    """
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, [], None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        header = struct.unpack(">IIBBBBB", chunk) if kind == b"IHDR" else header
        idat += [chunk] if kind == b"IDAT" else []
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0 and colour in (0, 2, 4, 6), header
    pixel = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw, stride = zlib.decompress(b"".join(idat)), 1 + width * pixel
    rows = (raw[r * stride + 1 + pixel:(r + 1) * stride] for r in range(height))
    return sum(row[pixel:] != row[:-pixel] for row in rows)


def test_chromium_renders_the_report_without_console_errors(chromium: Path, page: str, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    result, shot = render(chromium, path, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert console_messages(result.stderr) == []
    assert shot.exists() and varied_rows(shot.read_bytes()) > 500
    dom = result.stdout
    metrics = re.search(r'<table class="sortable" id="metrics">.*?</table>', dom, re.DOTALL)
    assert metrics is not None and metrics.group(0).count("<tr") == 1 + 3 + 8  # header, a heading per set, metrics
    assert dom.count("<script") == 1 and "<img" not in dom and 'id="pwn"' not in dom
    # sts scatters, maps (circles, the other shapes are paths, one per legend key), loss and dev curves
    markers = dom.count("<circle") + dom.count("<path")
    assert markers == 2 * 80 + 2 * (150 + 120) + 2 * 7 + 5 + 3


def test_sorting_the_metrics_table_in_chromium(chromium: Path, page: str, tmp_path: Path) -> None:
    # The page's policy runs only its own script (by hash), so the test drops the policy to add a click.
    # The header is a button, so a keyboard reaches it (Tab) and activates it (Enter/Space, which fire click).
    click = ('<script>var b = document.querySelectorAll("#metrics th button")[2]; b.focus(); b.click();'
             '</script></body>')
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page).replace("</body>", click)
    path = tmp_path / "click.html"
    path.write_text(page, encoding="utf-8")
    result, _ = render(chromium, path, tmp_path)
    assert result.returncode == 0 and console_messages(result.stderr) == []
    table = re.search(r'<table class="sortable" id="metrics">.*?</table>', result.stdout, re.DOTALL).group(0)
    assert '<th aria-sort="ascending"><button type="button">Δ [95% CI]</button></th>' in table
    assert table.count('aria-sort="none"') == 4
    groups = re.findall(r"<tbody>(.*?)</tbody>", table, re.DOTALL)
    assert len(groups) == 3  # sorted within each dataset: its rows stay under its heading
    for group in groups:
        deltas = [float(d) for d in re.findall(r'<td class="num delta">([^<]+)<span', group)]
        assert deltas == sorted(deltas) and deltas


def test_console_error_detector_catches_a_broken_page(chromium: Path, tmp_path: Path) -> None:
    path = tmp_path / "broken.html"
    path.write_text("<!DOCTYPE html><html><body><p>broken</p><script>console.error('explicit');"
                    "undefinedFunction();</script></body></html>", encoding="utf-8")
    result, _ = render(chromium, path, tmp_path)
    messages = console_messages(result.stderr)
    assert any("Uncaught ReferenceError: undefinedFunction" in m for m in messages), result.stderr[-3000:]
    assert any("explicit" in m for m in messages)


def test_csp_blocks_an_injected_script_in_chromium(chromium: Path, page: str, tmp_path: Path) -> None:
    # If escaping ever failed, the policy would still stop the script, and the log would say so.
    path = tmp_path / "injected.html"
    path.write_text(page.replace("</body>", "<script>document.title = 'ran';</script></body>"), encoding="utf-8")
    result, _ = render(chromium, path, tmp_path)
    assert "<title>ran</title>" not in result.stdout
    assert any("Content Security Policy" in m for m in console_messages(result.stderr)), result.stderr[-3000:]


# Opens every collapsed section, then logs each table that sticks out of the window without a scrolling wrapper.
MEASURE = """<script>
document.querySelectorAll("details").forEach(function (d) { d.open = true; });
var wide = [], tables = document.querySelectorAll("table");
tables.forEach(function (t, i) {
  var box = t.parentElement, inner = window.innerWidth + 0.5;
  var scrolls = getComputedStyle(box).overflowX === "auto" && box.getBoundingClientRect().right <= inner;
  if (t.getBoundingClientRect().right > inner && !scrolls) { wide.push(i); }
});
console.log("MEASURE " + JSON.stringify({wide: wide, tables: tables.length,
  page: document.documentElement.scrollWidth, window: window.innerWidth}));
</script></body>"""
# Headless Chromium keeps windows at least 500 px wide: a 390 px frame is the phone's viewport (its own innerWidth).
PHONE = ('<!DOCTYPE html><html><body style="margin:0"><iframe src="report.html" title="phone" '
         'style="width:390px;height:2000px;border:0"></iframe></body></html>')


def on_a_phone(chromium: Path, page: str, tmp_path: Path) -> tuple[dict, Path]:
    """The page's measurement in a 390 px viewport, and the screenshot of it."""
    # The policy runs only the page's own script, so the test drops it to add its measurement.
    measured = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page).replace("</body>", MEASURE)
    (tmp_path / "report.html").write_text(measured, encoding="utf-8")
    (tmp_path / "phone.html").write_text(PHONE, encoding="utf-8")
    result, shot = render(chromium, tmp_path / "phone.html", tmp_path)
    messages = console_messages(result.stderr)
    found = [re.search(r'"MEASURE (\{.*\})", source', m) for m in messages]
    assert result.returncode == 0 and len(messages) == 1 and found[0], result.stderr[-3000:]  # no other message
    return json.loads(found[0].group(1)), shot


FIRST_SCREEN = """<script>
var cell = document.querySelector("#metrics td.delta"), box = cell.getBoundingClientRect();
console.log("FIRST " + JSON.stringify({bottom: box.bottom, right: box.right, text: cell.textContent,
  window: window.innerWidth}));
</script></body>"""
PHONE_SCREEN = 844  # px: the height of a 390 px wide phone's screen (iPhone 12 to 15)


def first_delta_on_a_phone(chromium: Path, page: str, tmp_path: Path) -> dict:
    measured = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page).replace("</body>", FIRST_SCREEN)
    (tmp_path / "report.html").write_text(measured, encoding="utf-8")
    (tmp_path / "phone.html").write_text(PHONE, encoding="utf-8")
    result, _ = render(chromium, tmp_path / "phone.html", tmp_path)
    found = [re.search(r'"FIRST (\{.*\})", source', m) for m in console_messages(result.stderr)]
    assert result.returncode == 0 and found and found[0], result.stderr[-3000:]
    return json.loads(found[0].group(1))


def test_the_first_screen_of_a_phone_shows_a_delta_with_its_interval(chromium: Path, page: str,
                                                                       tmp_path: Path) -> None:
    first = first_delta_on_a_phone(chromium, page, tmp_path)
    assert first["window"] == 390 and first["bottom"] <= PHONE_SCREEN and first["right"] <= 390, first
    assert re.fullmatch(r"[+-]\d\.\d{4}\[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]", first["text"]), first
    # the check can fail: a long block above the table pushes the first delta off the first screen
    pushed = page.replace('<h2>Metrics</h2>', '<p>' + 'long words ' * 400 + '</p><h2>Metrics</h2>')
    assert first_delta_on_a_phone(chromium, pushed, tmp_path)["bottom"] > PHONE_SCREEN


def test_the_phone_check_catches_a_table_that_does_not_scroll(chromium: Path, page: str, tmp_path: Path) -> None:
    measure, _ = on_a_phone(chromium, page.replace(".scroll{overflow-x:auto;", ".scroll{"), tmp_path)
    assert measure["wide"] and measure["page"] > measure["window"] == 390, measure


def test_a_phone_sees_the_page_without_sideways_overflow(chromium: Path, page: str, tmp_path: Path) -> None:
    measure, shot = on_a_phone(chromium, page, tmp_path)
    assert measure["window"] == 390 and measure["tables"] == 4  # metrics, reference rows, queries, encoding
    assert measure["wide"] == [], measure  # every table fits or scrolls inside its own wrapper
    assert measure["page"] <= measure["window"], measure  # nothing else pushes the page sideways either
    assert shot.exists() and varied_rows(shot.read_bytes()) > 500


# --- weight and contrast ---------------------------------------------------------------------------------------------
def luminance(colour: str) -> float:
    """WCAG relative luminance of '#rgb' or '#rrggbb'."""
    hex_ = colour.lstrip("#")
    hex_ = "".join(c * 2 for c in hex_) if len(hex_) == 3 else hex_
    channels = [int(hex_[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_text_colour_meets_wcag_aa_on_every_light_background() -> None:
    css = (Path(__file__).resolve().parents[1] / "evaluate/report/templates/report.css").read_text()
    texts = set(re.findall(r"(?<![-\w])(?:color|fill):(#[0-9a-fA-F]{3,6})\b", css)) - {"#fff"}
    grounds = {"#ffffff", *re.findall(r"background:(#[0-9a-fA-F]{6})", css)}
    light = [g for g in grounds if luminance(g) > 0.7]
    assert len(texts) >= 8 and len(light) >= 8
    weak = [(t, g, round(contrast(t, g), 2)) for t in texts for g in light if contrast(t, g) < 4.5]
    assert weak == [], weak
    assert contrast("#888888", "#ffffff") < 4.5  # the old greyed row: the check would have caught it


def test_the_box_plot_of_many_pairs_carries_no_per_point_text() -> None:
    report, details = synthetic()
    sts = next(name for name in details if name.startswith("sts"))
    rng = random.Random(1)
    details[sts]["pairs"] = [{**p, "gold": float(rng.randrange(6))} for p in scored_pairs(rng, 1600, binary=False)]
    page = html_report(report, details)
    strip = re.search(r'<svg class="chart"[^>]*aria-label="similarity per gold level".*?</svg>', page, re.DOTALL)
    assert strip is not None and strip.group(0).count("h0") == 2 * 1600 and "<title>" not in strip.group(0)
    assert len(page.encode()) < 600_000  # 3,200 dots, 2 x 270 map points, histograms: well under the old weight
