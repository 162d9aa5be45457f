# Data: synthetic datasets in the real on-disk formats, the dataset reader (the clip list
# from the videos; the clip index and per-frame labels from the labels), and frame
# extraction in shards.
from twbyol.experiment import split_seed


rule synth:
    """Generate a synthetic dataset in the MABe22 or RatSI on-disk format."""
    input:
        stage_code("synth"),
    output:
        # written last, after every video and label file: the dataset is complete
        "results/{exp}/data/{dataset}/synth.json",
    params:
        fmt=lambda w: dataset_cfg(w)["format"],
        # the dataset's synthetic block as given, one JSON object (sorted keys; the defaults
        # are twbyol.synthetic.generate.SynthConfig's): changing it reruns the job
        cfg=lambda w: as_json(dataset_cfg(w)["synthetic"]),
        out_dir=lambda w: f"results/{w.exp}/data/{w.dataset}",
    threads: stage_threads("synth", 2)
    log:
        "results/{exp}/logs/synth/{dataset}.log",
    benchmark:
        "results/{exp}/benchmarks/synth/{dataset}.tsv"
    resources:
        **stage_resources("synth"),
    conda:
        ENV
    shell:
        "twbyol synth --format {params.fmt} --out {params.out_dir:q} --config {params.cfg:q}"
        " --jobs {threads} > {log:q} 2>&1"


rule clip_list:
    """List the dataset's clips (frame counts, rates, sources, extraction shards) from its
    videos alone: frame extraction and pretraining read only this, so a label edit reruns
    neither."""
    input:
        root=clip_inputs,
        code=stage_code("read-dataset"),
    output:
        clips="results/{exp}/frames/{dataset}/clips.tsv",
    params:
        fmt=lambda w: dataset_cfg(w)["format"],
        n_shards=lambda w: dataset_cfg(w)["frames"]["n_shards"],
        root=dataset_dir,
        options=lambda w: as_json(clip_options(dataset_cfg(w))),
        min_frames=lambda w: min_clip_frames(exp_cfg(w), w.dataset),
    log:
        "results/{exp}/logs/clip_list/{dataset}.log",
    benchmark:
        "results/{exp}/benchmarks/clip_list/{dataset}.tsv"
    threads: stage_threads("read_dataset")
    resources:
        **stage_resources("read_dataset"),
    conda:
        ENV
    shell:
        "twbyol read-dataset --format {params.fmt} --root {params.root:q} --options {params.options:q}"
        " --clips-out {output.clips:q} --n-shards {params.n_shards}"
        " --min-frames {params.min_frames} > {log:q} 2>&1"


rule read_dataset:
    """Read the dataset's labels into the clip index, the per-frame labels and the evaluation
    protocol, validating them (each clip's shard from the clip list)."""
    input:
        root=dataset_inputs,
        clips="results/{exp}/frames/{dataset}/clips.tsv",
        code=stage_code("read-dataset"),
    output:
        index="results/{exp}/frames/{dataset}/index.tsv",
        labels="results/{exp}/labels/{dataset}.npz",
        protocol="results/{exp}/labels/{dataset}.protocol.json",
    params:
        fmt=lambda w: dataset_cfg(w)["format"],
        root=dataset_dir,
        options=lambda w: as_json(reader_options(dataset_cfg(w))),
        split_seed=lambda w: split_seed(exp_cfg(w)),
        # an evaluated dataset must have labels; a pretraining-only one may have none
        require=lambda w: "--require-labels" if w.dataset in exp_cfg(w)["eval_datasets"] else "",
    # before the frames and pretraining that are ready with it: a bad label file fails
    # first (what they make does not depend on the labels, so it stays valid either way)
    priority: 10
    log:
        "results/{exp}/logs/read_dataset/{dataset}.log",
    benchmark:
        "results/{exp}/benchmarks/read_dataset/{dataset}.tsv"
    threads: stage_threads("read_dataset")
    resources:
        **stage_resources("read_dataset"),
    conda:
        ENV
    shell:
        "twbyol read-dataset --format {params.fmt} --root {params.root:q} --options {params.options:q}"
        " --clips {input.clips:q} --index-out {output.index:q} --labels-out {output.labels:q}"
        " --protocol-out {output.protocol:q} --split-seed {params.split_seed} {params.require} > {log:q} 2>&1"


rule frames:
    """Decode one shard of clips into uint8 (T, H, W) memmap .npy files."""
    input:
        clips="results/{exp}/frames/{dataset}/clips.tsv",
        code=stage_code("extract-frames"),
    output:
        done="results/{exp}/frames/{dataset}/shard{shard}.done",
    params:
        size=lambda w: dataset_cfg(w)["frames"]["size"],
        fit=lambda w: dataset_cfg(w)["frames"].get("fit", DEFAULT_FRAME_FIT),
        out_dir=lambda w: f"results/{w.exp}/frames/{w.dataset}",
        root=dataset_dir,
    log:
        "results/{exp}/logs/frames/{dataset}/shard{shard}.log",
    threads: stage_threads("frames")
    resources:
        **stage_resources("frames"),
    benchmark:
        "results/{exp}/benchmarks/frames/{dataset}/shard{shard}.tsv"
    conda:
        ENV
    shell:
        "twbyol extract-frames --clips {input.clips:q} --shard {wildcards.shard} --size {params.size}"
        " --fit {params.fit} --out-dir {params.out_dir:q} --done {output.done:q} --root {params.root:q} > {log:q} 2>&1"
