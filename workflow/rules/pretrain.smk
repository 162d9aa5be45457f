# Pretraining: a local rule that submits the run through submitit (twbyol.launch) and blocks
# until it ends; SLURM resources come from the experiment's `resources`, not from Snakemake.

localrules:
    pretrain,


rule pretrain:
    input:
        shards=lambda w: frame_shards(w.exp, EXPERIMENTS[w.exp]["pretrain_dataset"]),
        # clips.tsv (index.tsv for a run that chooses protocol splits)
        index=lambda w: run_config(w.exp, w.run, w.seed)["index"],
        # the supervised upper bound's labels and protocol (which clips it may learn from)
        labels=lambda w: [cfg["labels"], cfg["protocol"]] if (cfg := run_config(w.exp, w.run, w.seed)).get("labels") else [],
        code=pretrain_code,
    output:
        model="results/{exp}/pretrain/{run}/seed{seed}/model.pt",
        metrics="results/{exp}/pretrain/{run}/seed{seed}/metrics.jsonl",
        efficiency="results/{exp}/pretrain/{run}/seed{seed}/efficiency.json",
        stdout="results/{exp}/pretrain/{run}/seed{seed}/stdout.log",
        stderr="results/{exp}/pretrain/{run}/seed{seed}/stderr.log",
    params:
        cfg=lambda w: as_json(run_config(w.exp, w.run, w.seed)),
    resources:
        # SLURM shape of the submitit job, read from the experiment; a resource, not a param,
        # so that moving a run to another cluster or GPU count does not invalidate its results
        submitit=lambda w: as_json(EXPERIMENTS[w.exp]["resources"]),
        launcher=LAUNCHER,
    log:
        "results/{exp}/logs/pretrain/{run}/seed{seed}.log",
    benchmark:
        "results/{exp}/benchmarks/pretrain/{run}/seed{seed}.tsv"
    conda:
        ENV
    shell:
        "twbyol pretrain --executor {resources.launcher} --config {params.cfg:q}"
        " --resources {resources.submitit:q} > {log:q} 2>&1"
