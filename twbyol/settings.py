"""Names and defaults of the settings several stages share, each once (stdlib only: the
workflow imports it at every Snakemake start, and the stages that read only these values do
not depend on the modules that use them).

A stage's own settings have their defaults in its config dataclass (twbyol.train.TrainConfig,
twbyol.evaluate.EvaluateConfig, twbyol.synthetic.generate.SynthConfig,
twbyol.features.EmbedConfig), not here; `check_keys` is their one check of a JSON object's
keys.
"""

from __future__ import annotations

import dataclasses

# the methods, each with the module it is built from (twbyol.methods.build_method imports it;
# twbyol.deps follows that import per run)
METHOD_MODULES = {
    "byol": "twbyol.methods.byol",
    "moco_v3": "twbyol.methods.contrastive",
    "simclr_v2": "twbyol.methods.contrastive",
    "time_contrast": "twbyol.methods.contrastive",
    "supervised": "twbyol.methods.supervised",
    "random_init": "twbyol.methods.byol",
}
METHODS = tuple(METHOD_MODULES)

# BYOL's pair weightings w(dt), and the controls (twbyol.methods.byol)
WEIGHTINGS = ("uniform", "exponential", "binary", "linear", "inverse_square")
# the positive control (same behaviour), the anti control (different behaviours) and the
# negative control (TW-BYOL's weights shuffled)
CONTROLS = ("oracle", "anti_oracle", "permuted")
LABELLED_WEIGHTINGS = ("oracle", "anti_oracle")  # the controls that read the ground truth
PAIR_WEIGHTINGS = WEIGHTINGS + CONTROLS
TIME_UNITS = ("frames", "seconds")  # of tau, time_contrast's window and crop gaps (tau_s, ...)
DEFAULT_TAU = 30.0  # frames at the source rate (30 fps: 1 s), TW-BYOL's tau

# the MABe22 evaluator's (twbyol.split)
EVALUATOR_SEED = 42  # mouse_round2_tasks.json: {"seeds": [42]}
EVALUATOR_TEST_SIZE = 0.1  # round2_evaluator.py: test_size = 0.1 for every task set

# a non-square video's frames on the square frame artifact (twbyol.data.frames): the whole
# frame with black bars, or its centre square
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")  # format videos: the files that are clips
# reader options a dataset's config may set, by format (twbyol.data.index.read_dataset;
# workflow/schemas/config.schema.yaml), and those of them that decide the clip list (the rest
# only the labels): the clip list's job gets only these, so editing `behaviours` reruns
# neither it nor what reads it
READER_OPTIONS = {
    "mabe22": ("files", "videos", "missing_videos"),
    "ratsi": (),
    "videos": ("behaviours",),
}
CLIP_OPTIONS = {
    "mabe22": ("files", "videos", "missing_videos"),
    "ratsi": (),
    "videos": (),
}
FRAME_FITS = ("letterbox", "crop")
DEFAULT_FRAME_FIT = "letterbox"


def check_keys(cls, d: dict, what: str) -> None:
    """A stage config's JSON object `d` holds only fields of the dataclass `cls`: else a
    ValueError naming the unknown keys and the known ones (`what`: the config's name)."""
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ValueError(f"{what} config: unknown keys {unknown} (known: {', '.join(known)})")
