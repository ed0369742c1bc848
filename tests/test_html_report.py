"""The HTML report: hostile dataset text stays inert, the page is offline, and a real headless Chromium renders it
without console errors (a deliberately broken page proves the error detector works)."""

from __future__ import annotations

import html
import os
import random
import re
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from evaluate.html_report import html_report

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
                "circle", "script"}


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
    top = [{"text": URL_TEXT if k == 4 else f"doc {q}-{k} {hostile(q + k)}", "score": 0.9 - 0.1 * k,
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
    return {"task": "retrieval", "queries": queries, "positive_scores": scores, "negative_scores": negatives,
            "map": embedding_map(rng, 120, hostile(1))}


def synthetic() -> tuple[dict, dict]:
    """A report and details for an sts, a pair_classification and a retrieval set, full of hostile strings."""
    rng = random.Random(0)
    sts, pairs, retrieval = f"sts {hostile(0)}", f"pairs {hostile(1)}", f"retrieval {hostile(2)}"
    datasets = {
        sts: dataset("sts", "spearman", {"spearman": metric(0.70, 0.82, True), "pearson": metric(0.68, 0.69, False),
                                         hostile(3): metric(0.5, 0.5, False)}),
        pairs: dataset("pair_classification", "ap", {"ap": metric(0.80, 0.74, True), "f1": metric(0.7, 0.71, False)}),
        retrieval: dataset("retrieval", "ndcg@10", {"ndcg@10": metric(0.40, 0.52, True), "mrr@10": metric(0.5, 0.6,
                                                                                                           False)}),
    }
    report = {"run_dir": f"runs/{hostile(5)}", "base_model": hostile(1), "model_revision": hostile(4),
              "tuned_model": f"runs/x/final/{hostile(2)}",
              "primary": {"dataset": sts, "metric": "spearman", **metric(0.70, 0.82, True), "improved": True},
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
    return html_report(*synthetic())


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
        assert html.escape(text) in page, f"{text!r} should be shown (escaped), not dropped"
    assert page.count("<script") == 1 and page.count("</script>") == 1
    assert page.count("<svg") == page.count("</svg>") == 14  # 2 sts scatters + 3 x (2 histograms + 2 maps)
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
    assert html.escape(URL_TEXT) in page
    rest = page.replace(html.escape(URL_TEXT), "")
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
               "--dump-dom", "--window-size=1280,2000", page.as_uri()]
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
    assert metrics is not None and metrics.group(0).count("<tr") == 1 + 7  # header + one row per metric
    assert dom.count("<script") == 1 and "<img" not in dom and 'id="pwn"' not in dom
    assert dom.count("<circle") == 2 * 80 + 2 * (150 + 150 + 120)


def test_sorting_the_metrics_table_in_chromium(chromium: Path, page: str, tmp_path: Path) -> None:
    # The page's policy runs only its own script (by hash), so the test drops the policy to add a click.
    click = '<script>document.querySelectorAll("#metrics th")[5].click();</script></body>'
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page).replace("</body>", click)
    path = tmp_path / "click.html"
    path.write_text(page, encoding="utf-8")
    result, _ = render(chromium, path, tmp_path)
    assert result.returncode == 0 and console_messages(result.stderr) == []
    deltas = [float(d) for d in re.findall(r'<td class="num delta">([^<]+)</td>', result.stdout)[:7]]
    assert deltas == sorted(deltas) and len(deltas) == 7


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
