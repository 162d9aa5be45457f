"""The real-video experiment (`real` in config/config.yaml): its folder, and its sanity kNN.

    python benchmarks/real_videos.py prepare [--shared ../shared/real_rodent_video] \\
        [--out results/real/videos]
    snakemake --cores 2 real
    python benchmarks/real_videos.py analyse [--results results/real] [--write]

`prepare` lays out a folder of own videos (format `videos`) from the real mouse recordings
of TWBYOL_REAL_VIDEOS (default ../shared/real_rodent_video; tests/README.md), which keep
their own licences and are never committed (see that folder's README): B-SOiD's 11
bottom-view clips named by behaviour, each three example bouts side by side (1350x360 at 15
fps), are cut into their three 450 px panels (`bsoid/{behaviour}_{1,2,3}.mp4`, H.264,
gray), each with a per-frame CSV marking its behaviour on every frame and the others 0:
clip-level labels, the only labels these videos have (they name B-SOiD's unsupervised
clusters, named by people afterwards; not frame annotations). Linked unlabelled beside them
(pretraining and prediction only): DeepLabCut's top-view open field (640x480, 30 fps, 2330
frames), its side-view reaching clip (416x374, 30 fps) and DANNCE's oblique view
(1328x1048, 120 fps, 3500 frames). B-SOiD's 5 fps group clips (4-23 frames) are left out:
most are shorter than a training crop's span.

`analyse` reads each run's embedding of the labelled clips (results/real/embed/{run}/
seed{s}/real.npy): a clip's embedding is the mean of its frames' (unit-normed); each clip's
nearest other clip (cosine) votes its behaviour (leave-one-out 1-NN over the 33 panels,
2 of the other 32 share each behaviour). Printed per run: accuracy over seeds, the chance
level (expected accuracy of the same vote with the labels shuffled; 2/32 here) and the
permutation p-value of the seeds' mean accuracy against 2,000 label shufflings (the same
shufflings for every seed); and each trained run against the untrained control (the
experiment's `study.control`): the accuracy difference paired by clip (a clip's hits averaged
over seeds) with a one-sided sign-flip p of "run > control". A clip's behaviour-mates are
the other panels of its own source video: "the behaviour is recognised" and "panels of one
recording look alike" cannot be told apart with these files, so a high score shows the
embedding separates these recordings, no more.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# the real mouse videos (DeepLabCut, B-SOiD, DANNCE examples): TWBYOL_REAL_VIDEOS, by
# default a checkout's sibling folder shared/real_rodent_video
SHARED = Path(
    os.environ.get("TWBYOL_REAL_VIDEOS") or REPO.parent / "shared" / "real_rodent_video"
).resolve()
PANELS = 3
PERMUTATIONS = 2000
UNLABELLED = {
    "dlc_openfield/m3v1mp4.mp4": "dlc_openfield_topview/m3v1mp4.mp4",
    "dlc_reaching/vid.avi": "dlc_reaching_sideview/vid.avi",
    "dannce/CameraL_0.mp4": "dannce_cylinder_oblique/CameraL_0.mp4",
}


def behaviours_of(shared: Path) -> list[tuple[str, Path]]:
    """(behaviour, video) of B-SOiD's named clips, sorted by behaviour."""
    src = shared / "bsoid_bottomview" / "named_clips"
    clips = sorted(src.glob("*_hstacked.mp4"))
    if not clips:
        raise FileNotFoundError(f"{src}: no *_hstacked.mp4 (the shared real videos are missing)")
    return [(c.stem.removesuffix("_hstacked"), c) for c in clips]


def prepare(shared: Path, out: Path) -> dict:
    """Write the experiment's folder (module docstring); returns what it holds."""
    import av

    from twbyol.synthetic.render import encode_video

    named = behaviours_of(shared)
    names = [b for b, _ in named]
    (out / "bsoid").mkdir(parents=True, exist_ok=True)
    made = {}
    for b, video in named:
        with av.open(str(video)) as c:
            fps = float(c.streams.video[0].average_rate)
            frames = np.stack([f.to_ndarray(format="gray") for f in c.decode(video=0)])
        w = frames.shape[2] // PANELS
        for k in range(PANELS):
            stem = f"{b}_{k + 1}"
            n = encode_video(out / "bsoid" / f"{stem}.mp4", frames[:, :, k * w : (k + 1) * w], fps)
            header = "frame," + ",".join(names)
            row = ",".join("1" if x == b else "0" for x in names)
            text = header + "\n" + "".join(f"{i},{row}\n" for i in range(n))
            (out / "bsoid" / f"{stem}.csv").write_text(text)
            made[f"bsoid__{stem}"] = {"behaviour": b, "frames": n, "fps": fps}
    for rel, src in UNLABELLED.items():
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink() or dst.exists():
            dst.unlink()
        dst.symlink_to((shared / src).resolve())
        made[rel.rsplit(".", 1)[0].replace("/", "__")] = {"behaviour": None, "source": src}
    return made


def loo_hits(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n,) bool: whether each row's leave-one-out cosine nearest neighbour shares its label."""
    z = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim = z @ z.T
    np.fill_diagonal(sim, -np.inf)
    return y[np.argmax(sim, axis=1)] == y


def loo_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out cosine 1-NN accuracy of rows x (n, D) with labels y (n,)."""
    return float(np.mean(loo_hits(x, y)))


def sign_flip_p(d: np.ndarray, n_perm: int, rng: np.random.Generator) -> float:
    """One-sided p of mean(d) > 0 for paired differences d (n,): the share of random sign
    flips of d whose mean is at least the observed one (the observed counted once)."""
    d = np.asarray(d, float)
    flips = rng.choice([-1.0, 1.0], size=(n_perm, len(d)))
    return float((1 + np.sum((flips * d).mean(axis=1) >= d.mean() - 1e-12)) / (1 + n_perm))


def chance(y: np.ndarray) -> float:
    """Expected LOO 1-NN accuracy with labels shuffled: sum_c (n_c / n) (n_c - 1) / (n - 1)."""
    _, counts = np.unique(y, return_counts=True)
    n = counts.sum()
    return float(np.sum(counts / n * (counts - 1) / (n - 1)))


def analyse(results: Path, dataset: str = "real", n_perm: int = 2000) -> dict:
    from twbyol.data.artifacts import load_labels

    lab = load_labels(results / "labels" / f"{dataset}.npz")
    y = np.array(
        [
            lab.tasks[int(np.argmax(np.nanmean(lab.label_array[:, s:e], 1)))]
            for s, e in zip(lab.starts, lab.ends)
        ]
    )
    out = {"clips": len(y), "behaviours": len(set(y)), "chance": chance(y)}
    rng = np.random.default_rng(0)
    perms = [rng.permutation(len(y)) for _ in range(n_perm)]
    hits: dict[str, np.ndarray] = {}  # run -> (n,) share of its seeds with a hit per clip
    for run_dir in sorted((results / "embed").iterdir()):
        accs, null, per_clip = [], np.zeros(n_perm), []
        for emb_path in sorted(run_dir.glob(f"seed*/{dataset}.npy")):
            emb = np.load(emb_path)
            x = np.stack([emb[s:e].mean(0) for s, e in zip(lab.starts, lab.ends)])
            per_clip.append(loo_hits(x, y))
            accs.append(float(per_clip[-1].mean()))
            null += [loo_accuracy(x, y[p]) for p in perms]
        if not accs:
            continue
        null /= len(accs)
        mean = float(np.mean(accs))
        hits[run_dir.name] = np.mean(per_clip, axis=0)
        out[run_dir.name] = {
            "seeds": len(accs),
            "accuracy": mean,
            "sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else float("nan"),
            "p_perm": float((1 + np.sum(null >= mean)) / (1 + n_perm)),
        }
    # each trained run against the untrained control, paired by clip (its hits averaged
    # over seeds): the difference in accuracy and a one-sided sign-flip p (run > control)
    exp_path = results / "experiment.json"
    study = json.loads(exp_path.read_text()).get("study", {}) if exp_path.exists() else {}
    control = study.get("control", "random_init")
    out["control"] = control if control in hits else None
    for run, h in hits.items():
        if run != control and control in hits:
            d = h - hits[control]
            out[run]["vs_control"] = {
                "diff": float(d.mean()),
                "p": sign_flip_p(d, n_perm, np.random.default_rng(1)),
            }
    return out


def knn_block(res: dict, results: Path) -> str:
    """The analysis as docs/results.md's `real-knn` block (regenerated by `analyse --write`,
    never edited)."""
    from readme_results import machine

    from twbyol import io
    from twbyol.tables import run_label

    exp = io.read_json(results / "experiment.json")
    report = (results / "report.md").read_text()
    version = next(
        (x.split("`")[1] for x in report.splitlines() if x.startswith("- code version:")), "?"
    )
    lines = [
        f"Generated by `python benchmarks/real_videos.py analyse --write` from {results}/ (code "
        f"`{version}`; {machine()}). Leave-one-out 1-NN over the {res['clips']} labelled clips "
        f"({res['behaviours']} behaviours), clip embedding = mean of its frames'; chance "
        f"{res['chance']:.4f}; p = share of {PERMUTATIONS} label shufflings scoring at least "
        "the seeds' mean accuracy; vs the control: the accuracy difference paired by clip "
        "(each clip's hits averaged over seeds) with the one-sided sign-flip p of run > "
        "control.",
        "",
        "| run | seeds | 1-NN accuracy | p (permutation) | vs the control (accuracy, p) |",
        "|---|---|---|---|---|",
    ]
    for run in exp["runs"]:
        r = res.get(run)
        if r:
            vs = r.get("vs_control")
            lines.append(
                f"| {run_label(exp, run)} | {r['seeds']} | {r['accuracy']:.3f} +- "
                f"{r['sd']:.3f} | {r['p_perm']:.3f} | "
                + (f"{vs['diff']:+.3f}, p = {vs['p']:.3f} |" if vs else "|")
            )
    return "\n".join(lines) + "\n\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="lay out the experiment's folder of videos")
    p.add_argument("--shared", type=Path, default=SHARED)
    p.add_argument("--out", type=Path, default=Path("results/real/videos"))
    a = sub.add_parser("analyse", help="the sanity kNN over the labelled clips")
    a.add_argument("--results", type=Path, default=Path("results/real"))
    a.add_argument("--dataset", default="real")
    a.add_argument(
        "--write", action="store_true", help="replace its block in docs/results.md with it"
    )
    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        made = prepare(args.shared, args.out)
        labelled = sum(v["behaviour"] is not None for v in made.values())
        print(f"{args.out}: {len(made)} videos, {labelled} labelled (clip-level)")
        return 0
    res = analyse(args.results, args.dataset, PERMUTATIONS)
    print(json.dumps(res, indent=1))
    if args.write:
        from readme_results import replace_block

        doc = REPO / "docs" / "results.md"
        block = knn_block(res, args.results)
        doc.write_text(replace_block(doc.read_text(), "real-knn", block))
        print(block)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
