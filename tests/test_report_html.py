"""The HTML report (`snakemake --report`) of the smoke study, opened in a real browser.

Snakemake's report is a single-page React app: its results appear only once one is chosen,
so a DOM dumped after loading holds the front page alone. The test therefore adds a script
to a copy of the report that, in the browser, drives the app as a reader does: it opens each
category (the list of its results), then each result (its description, rendered from our
workflow/report/*.rst), then clicks the result's view button, and waits for the image to
decode (or the PDF's frame, or the table's download link). It writes what the page showed at
each step into an element of the page, which headless Chromium's --dump-dom hands back.

Checked: the front page holds workflow/report/workflow.rst's first sentence; the categories
are Study, Figures, Ethograms and Predictions; every figure of the figures stage's manifest is
listed under Figures by name, its description holds its own first sentence of
workflow/report/figures.rst (rendered for that figure) and its PNG is displayed and decoded
at its own width; each dataset's ethogram likewise (and its videos' PDF shown in a frame),
its bouts and time-budget tables offered as CSV, and report.md, comparison.tsv and
criteria.json under Study, each with its own caption's first sentence.

Needs Debian's chromium (`make setup` installs it): skipped without it, failed under CI=true.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest

from tests.conftest import _unavailable
from tests.test_workflow import REPO, snakemake

pytestmark = pytest.mark.slow

CAPTIONS = REPO / "workflow" / "report"

# Runs in the report's page after its own scripts: drives the app (globals `app`, `results`,
# `categories` of Snakemake's report) and leaves what it saw as JSON in <pre id=...>.
DRIVER = """
<script>
(async () => {
  const tick = (ms) => new Promise((r) => setTimeout(r, ms));
  const text = () => document.querySelector("#app").innerText;
  const seen = {front: "", categories: {}, results: {}, error: null};
  try {
    await tick(500);
    seen.front = text();
    for (const cat of Object.keys(categories)) {
      // back to the menu, then a click on the category's entry, as a reader does
      app.setView({navbarMode: "menu"});
      await tick(200);
      const entry = [...document.querySelectorAll("#app *")].find(
        (el) => el.children.length === 0 && el.textContent.trim() === cat);
      if (!entry) throw new Error(`no menu entry ${cat}`);
      entry.click();
      await tick(200);
      seen.categories[cat] = text();
    }
    for (const path of Object.keys(results)) {
      app.showResultInfo(path);
      await tick(200);
      const r = {info: text(), shown: null};
      const button = document.querySelector('ul table td a[type="button"]');
      if (button) {
        r.href = (button.getAttribute("href") || "").slice(0, 40);
        if (r.href === "#") {
          button.click();
          await tick(300);
          const img = document.querySelector("#app img:not([class])");
          const frame = document.querySelector("#app iframe");
          if (img && img.src.startsWith("data:")) {
            for (let i = 0; i < 50 && !img.complete; i++) await tick(100);
            r.shown = {img: img.src.slice(0, 14), width: img.naturalWidth,
                       height: img.naturalHeight};
          } else if (frame) {
            r.shown = {iframe: frame.src.slice(0, 20)};
          }
        }
      }
      seen.results[path] = r;
    }
  } catch (err) {
    seen.error = String(err);
  }
  const pre = document.createElement("pre");
  pre.id = "twbyol-check";
  pre.textContent = JSON.stringify(seen);
  document.body.appendChild(pre);
})();
</script>
"""


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        _unavailable("no chromium on PATH: `make setup` installs Debian's chromium (root)")
    return exe


def browse(report: Path, tmp: Path) -> dict:
    """What the report showed in headless Chromium as DRIVER went through it."""
    page = tmp / "driven.html"
    head, body_end, tail = report.read_text().rpartition("</body>")  # the page's own: the last
    assert body_end, f"{report}: no </body>"
    page.write_text(head + DRIVER + body_end + tail)
    p = subprocess.run(
        [
            chromium(),
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            f"--user-data-dir={tmp / 'profile'}",
            "--virtual-time-budget=120000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    m = re.search(r'<pre id="twbyol-check">(.*?)</pre>', p.stdout, re.S)
    assert m, f"no driver output in the dumped DOM (chromium exit {p.returncode}):\n{p.stderr}"
    seen = json.loads(html.unescape(m[1]))
    assert seen["error"] is None, seen["error"]
    return seen


def words(s: str) -> str:
    return " ".join(s.split())


def first_sentence(caption: str, **wildcards) -> str:
    """The first line of a caption .rst as the report renders it for these wildcards (the
    captions' first lines are plain text, no reStructuredText markup)."""
    template = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(
        (CAPTIONS / caption).read_text()
    )
    text = template.render(snakemake=SimpleNamespace(wildcards=SimpleNamespace(**wildcards)))
    return words(next(line for line in text.splitlines() if line.strip()))


def png_size(path: Path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])


@pytest.fixture(scope="module")
def shown(smoke_run, tmp_path_factory):
    wd = smoke_run[0]
    tmp = tmp_path_factory.mktemp("report html")
    snakemake(wd, "--report", str(tmp / "report.html"), "smoke")
    return wd / "results" / "smoke", browse(tmp / "report.html", tmp)


def result(seen: dict, path: str) -> dict:
    assert path in seen["results"], f"{path} not in the report: {sorted(seen['results'])}"
    return seen["results"][path]


def test_front_page_describes_the_workflow(shown):
    _, seen = shown
    assert first_sentence("workflow.rst") in words(seen["front"])
    assert set(seen["categories"]) == {"Study", "Figures", "Ethograms", "Predictions"}


def test_every_figure_is_shown_with_its_caption(shown):
    res, seen = shown
    figures = json.loads((res / "images" / "manifest.json").read_text())["figures"]
    assert {"per_task_f1", "loss_curves", "distance_vs_dt"} <= {f["name"] for f in figures}
    listing = words(seen["categories"]["Figures"])
    for f in figures:
        name = f["name"]
        assert name in listing
        r = result(seen, f"results/smoke/report/figures/{name}.png")
        assert first_sentence("figures.rst", figure=name) in words(r["info"]), name
        width, height = png_size(res / "images" / f["png"])
        assert r["shown"] == {"img": "data:image/png", "width": width, "height": height}


def test_ethograms_and_predictions_are_shown_with_their_captions(shown):
    res, seen = shown
    for ds in ("mice", "rats"):
        r = result(seen, f"results/smoke/images/ethogram_{ds}.png")
        assert first_sentence("ethogram.rst", dataset=ds) in words(r["info"])
        width, height = png_size(res / "images" / f"ethogram_{ds}.png")
        assert r["shown"] == {"img": "data:image/png", "width": width, "height": height}
        r = result(seen, f"results/smoke/images/ethogram_{ds}_videos.pdf")
        assert first_sentence("ethogram_videos.rst", dataset=ds) in words(r["info"])
        assert r["shown"] == {"iframe": "data:application/pdf"}
        for table, caption in (("bouts", "bouts.rst"), ("time_budget", "time_budget.rst")):
            r = result(seen, f"results/smoke/export/twbyol_tau30/seed0/{ds}.{table}.csv")
            assert first_sentence(caption, dataset=ds, run="twbyol_tau30", seed="0") in words(
                r["info"]
            )
            assert r["href"].startswith("data:text/csv")


def test_the_study_and_its_verdict_are_in_the_report(shown):
    _, seen = shown
    for path, caption in (
        ("results/smoke/report.md", "study_report.rst"),
        ("results/smoke/stats/comparison.tsv", "comparison.rst"),
        ("results/smoke/stats/criteria.json", "criteria.rst"),
    ):
        r = result(seen, path)
        assert first_sentence(caption) in words(r["info"]), path
        assert r["href"].startswith("data:"), path
    assert "Verdict" in words(result(seen, "results/smoke/report.md")["info"])


def test_the_verdict_is_on_the_page(shown):
    """report.md as a page (report/study.html) is shown in the report itself, its figures
    inlined: the verdict reads without a download."""
    res, seen = shown
    r = result(seen, "results/smoke/report/study.html")
    assert first_sentence("study_page.rst") in words(r["info"])
    assert r["shown"]["iframe"].startswith("data:text/html")
    page = (res / "report" / "study.html").read_text()
    md = (res / "report.md").read_text()
    verdict = md.split("## Verdict", 1)[1].split("\n## ", 1)[0].replace("*", "").replace("`", "")
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "<h2>Verdict</h2>" in page and " ".join(verdict.split()[:12]) in words(text)
    assert 'src="data:image/png;base64,' in page and 'src="images/' not in page
    assert "<table>" in page  # the headline table rendered
