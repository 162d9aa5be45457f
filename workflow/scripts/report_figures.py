"""Rule report_figures: the PNG of each figure in the figures stage's manifest.json, copied
into the rule's output folder, which the HTML report (`snakemake --report`) takes its
figures from by pattern (workflow/report/figures.rst describes each)."""

import json
import os
import shutil
from pathlib import Path

snakemake = globals()["snakemake"]  # set by Snakemake's script directive

manifest = Path(snakemake.input.manifest)
out_dir = Path(snakemake.output[0])
os.makedirs(out_dir)
with open(snakemake.log[0], "w") as log:
    for f in json.loads(manifest.read_text())["figures"]:
        shutil.copy2(manifest.parent / f["png"], out_dir / f["png"])
        print(f"copied {manifest.parent / f['png']}", file=log)
