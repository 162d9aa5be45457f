"""Figures as files: matplotlib without a display (cluster nodes have none), and `Figures`,
which writes a stage's figures as PDF (for print) and PNG (for report.md) with their
manifest entries. The figures and ethogram stages both write through it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on cluster nodes
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

from twbyol import io  # noqa: E402


class Figures:
    """Collects figures into --out-dir and their entries for manifest.json; with a
    `report_dir`, each PNG copied there too (the HTML report's folder of figures)."""

    def __init__(self, out_dir: Path, report_dir: Path | None = None):
        self.out_dir, self.report_dir, self.entries = out_dir, report_dir, []

    def save(self, fig: plt.Figure, name: str, caption: str) -> None:
        for ext in ("pdf", "png"):
            with io.atomic_path(self.out_dir / f"{name}.{ext}") as tmp:
                fig.savefig(tmp, format=ext)
        if self.report_dir is not None:  # the PNG again, for the HTML report
            with io.atomic_path(self.report_dir / f"{name}.png") as tmp:
                shutil.copyfile(self.out_dir / f"{name}.png", tmp)
        plt.close(fig)
        self.entries.append(
            {"name": name, "pdf": f"{name}.pdf", "png": f"{name}.png", "caption": caption}
        )
        print(f"wrote {self.out_dir / name}.pdf/.png")

    def write_manifest(self) -> None:
        io.write_json(self.out_dir / "manifest.json", {"figures": self.entries})
