"""The Snakemake report of the smoke run, opened in a real headless browser.

The report is one HTML file whose page is built by React at load time, so its text
is checked in the DOM Chromium dumps after running the scripts, not in the file.
The screenshots are kept beside the smoke run (the path is printed). Needs Debian's
`chromium`: .ci/run installs it when it runs as root on Debian; elsewhere, without
Chromium, the tests skip.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_workflow import snakemake

pytestmark = pytest.mark.slow

#: The figure opened in the report: main Fig. 5, drawn from every dynamics seed.
FIGURE = "results/figures/dynamics_mass_main.png"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    on_ci_machine = os.geteuid() == 0 and Path("/etc/debian_version").exists()
    if on_ci_machine:  # .ci/run installs it here: absence is a failure, not a skip
        pytest.fail("chromium is missing; `apt-get install -y chromium` (see .ci/run)")
    pytest.skip("no chromium on PATH and not root on Debian (cannot install it)")


def browse(
    page: Path, profile: Path, *mode: str, height: int = 1000
) -> subprocess.CompletedProcess:
    """Open `page` in headless Chromium (1400 x `height` window), let its scripts
    run for 10 s of virtual time, then apply `mode` (--dump-dom, --screenshot=)."""
    args = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--window-size=1400,{height}",
        "--virtual-time-budget=10000",
        f"--user-data-dir={profile}",
        *mode,
        page.as_uri(),
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


class RenderedPage(HTMLParser):
    """The rendered DOM (script text skipped, as HTMLParser keeps script data
    apart): data-verdict of every claims-table row, <img> sources, the text."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.in_table = 0
        self.in_script = False
        self.verdicts: list[str] = []
        self.images: list[str] = []
        self.chunks: list[str] = []
        self.feed(dom)
        self.text = " ".join(self.chunks)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.in_script = tag in ("script", "style")
        if tag == "table" and attrs.get("id") == "claims-table":
            self.in_table += 1
        elif tag == "tr" and self.in_table and "data-verdict" in attrs:
            self.verdicts.append(attrs["data-verdict"])
        elif tag == "img":
            self.images.append(attrs.get("src") or "")

    def handle_endtag(self, tag):
        self.in_script = False
        if tag == "table" and self.in_table:
            self.in_table -= 1

    def handle_data(self, data):
        if not self.in_script:
            self.chunks.append(data)


def pixels(png: Path) -> np.ndarray:
    """(H·W, 3) uint8 RGB pixels of a screenshot."""
    import matplotlib.image as mpimg

    return (mpimg.imread(png)[..., :3].reshape(-1, 3) * 255).round().astype(np.uint8)


def not_blank(png: Path) -> tuple[float, int]:
    """(pixel standard deviation in [0, 1], number of distinct colours)."""
    rgb = pixels(png)
    return float(rgb.std() / 255), len(np.unique(rgb, axis=0))


#: Background of the verdict cells (ntkadv.claims.table._HTML_STYLE).
VERDICT_RGB = {"pass": (0xD6, 0xF0, 0xD6), "fail": (0xF6, 0xD3, 0xD3),
               "inconclusive": (0xF1, 0xEA, 0xD0)}  # fmt: skip


@pytest.fixture(scope="module")
def report(smoke_run) -> Path:
    """`snakemake --report` of the smoke run, in <workdir>/browser/."""
    workdir, cfg = smoke_run
    out = workdir / "browser"
    out.mkdir(exist_ok=True)
    snakemake(workdir, cfg, "--report", out / "report.html")
    print(f"report and screenshots: {out}")
    return out / "report.html"


def test_landing_page_shows_the_claims_table_with_every_verdict(
    report, smoke_run, tmp_path
):
    claims = pd.read_csv(smoke_run[0] / "results/tables/claims.csv")
    page = RenderedPage(browse(report, tmp_path / "profile", "--dump-dom").stdout)
    # the landing text, put in the page by the report's scripts
    assert "How to read the verdicts" in page.text
    assert "{'" not in page.text  # the datasets are listed, not a raw Python dict
    assert "mnist : 60 training and 12 test images" in " ".join(page.text.split())
    assert page.verdicts == claims["verdict"].tolist()
    assert len(page.verdicts) > 5

    shot = report.parent / "landing.png"
    browse(report, tmp_path / "profile", f"--screenshot={shot}", height=3000)
    std, colours = not_blank(shot)
    rgb = pixels(shot)
    shown = {
        v: int((rgb == VERDICT_RGB[v]).all(axis=1).sum()) for v in set(page.verdicts)
    }
    print(f"landing screenshot {shot}: pixel std {std:.3f}, {colours} colours, ")
    print(f"verdict-cell pixels {shown}")
    assert std > 0.05 and colours > 50
    assert sum(shown.values()) > 1000  # the verdict cells are drawn, coloured


def test_selecting_a_figure_shows_the_png_of_the_run(report, smoke_run, tmp_path):
    """Selecting a figure (what a click on its row does: the report's own
    ToggleViewManager) puts the run's PNG, byte for byte, in an <img>."""
    select = (
        "<script>(function go() {"
        "if (typeof app === 'undefined' || !app) { return setTimeout(go, 50); }"
        f"new ToggleViewManager(app).handleSelectedResult('{FIGURE}');"
        "})();</script>"
    )
    page = report.parent / "report_figure.html"
    head, end, tail = report.read_text().rpartition("</body>")  # the document's own
    page.write_text(head + select + end + tail)
    dom = RenderedPage(browse(page, tmp_path / "profile", "--dump-dom").stdout)
    png = (smoke_run[0] / FIGURE).read_bytes()
    shown = [
        base64.b64decode(src.split("base64,", 1)[1])
        for src in dom.images
        if src.startswith("data:image/png")
    ]
    assert png in shown, f"{len(dom.images)} images, none is {FIGURE}"

    shot = report.parent / "figure.png"
    browse(page, tmp_path / "profile", f"--screenshot={shot}")
    std, colours = not_blank(shot)
    print(f"figure screenshot {shot}: pixel std {std:.3f}, {colours} colours")
    assert std > 0.05 and colours > 50
