# Evaluation: linear probes (MABe22 protocol), kNN, rare-action F1, few-shot probes and
# temporal locality of one run's embedding of one dataset.


rule evaluate:
    input:
        embedding="results/{exp}/embed/{run}/seed{seed}/{dataset}.npy",
        projection="results/{exp}/embed/{run}/seed{seed}/{dataset}.projection.npz",
        labels="results/{exp}/labels/{dataset}.npz",
        protocol="results/{exp}/labels/{dataset}.protocol.json",
        index="results/{exp}/frames/{dataset}/index.tsv",
        code=stage_code("evaluate"),
    output:
        json="results/{exp}/evaluate/{run}/seed{seed}/{dataset}.json",
        probes="results/{exp}/evaluate/{run}/seed{seed}/{dataset}.probes.npz",
    params:
        # the settings, one JSON object (twbyol.evaluate.EvaluateConfig's fields; sorted
        # keys): changing any reruns the job, an unchanged config plans nothing
        cfg=lambda w: as_json(evaluation_config(exp_cfg(w), w.dataset)),
        method=lambda w: exp_cfg(w)["runs"][w.run]["method"],
    log:
        "results/{exp}/logs/evaluate/{run}/seed{seed}/{dataset}.log",
    benchmark:
        "results/{exp}/benchmarks/evaluate/{run}/seed{seed}/{dataset}.tsv"
    threads: stage_threads("evaluate")
    resources:
        **stage_resources("evaluate"),
    conda:
        ENV
    shell:
        "twbyol evaluate --embedding {input.embedding:q} --labels {input.labels:q} --index {input.index:q}"
        " --protocol {input.protocol:q} --projection {input.projection:q} --out {output.json:q}"
        " --probes-out {output.probes:q} --config {params.cfg:q} --run-id {wildcards.run}"
        " --seed {wildcards.seed} --dataset {wildcards.dataset} --method {params.method} > {log:q} 2>&1"


rule predict:
    """Behaviour calls and scores, per frame, of every video of a dataset (labelled and
    unlabelled) with one run's backbone and its evaluation's probes."""
    input:
        model="results/{exp}/pretrain/{run}/seed{seed}/model.pt",
        probes="results/{exp}/evaluate/{run}/seed{seed}/{dataset}.probes.npz",
        shards=lambda w: frame_shards(w.exp, w.dataset),
        index="results/{exp}/frames/{dataset}/index.tsv",
        code=stage_code("predict"),
    output:
        directory("results/{exp}/predict/{run}/seed{seed}/{dataset}"),
    params:
        cfg=lambda w: as_json(embedding_cfg(w)),
        frames_dir=lambda w: f"results/{w.exp}/frames/{w.dataset}",
    log:
        "results/{exp}/logs/predict/{run}/seed{seed}/{dataset}.log",
    benchmark:
        "results/{exp}/benchmarks/predict/{run}/seed{seed}/{dataset}.tsv"
    threads: stage_threads("predict")
    resources:
        **stage_resources("predict"),
    conda:
        ENV
    shell:
        "twbyol predict --model {input.model:q} --probes {input.probes:q} --frames-dir {params.frames_dir:q}"
        " --index {input.index:q} --out-dir {output:q} --config {params.cfg:q} > {log:q} 2>&1"


rule submission:
    """A run's embedding of a MABe22-layout dataset as the public evaluator's submission file
    (float32, D <= 128, the release's frame-map order), scorable with the official code."""
    input:
        embedding="results/{exp}/embed/{run}/seed{seed}/{dataset}.npy",
        protocol="results/{exp}/labels/{dataset}.protocol.json",
        index="results/{exp}/frames/{dataset}/index.tsv",
        code=stage_code("submission"),
    output:
        npy="results/{exp}/submission/{run}/seed{seed}/{dataset}.npy",
        info="results/{exp}/submission/{run}/seed{seed}/{dataset}.json",
    log:
        "results/{exp}/logs/submission/{run}/seed{seed}/{dataset}.log",
    benchmark:
        "results/{exp}/benchmarks/submission/{run}/seed{seed}/{dataset}.tsv"
    threads: stage_threads("submission")
    resources:
        **stage_resources("submission"),
    conda:
        ENV
    shell:
        "twbyol submission --embedding {input.embedding:q} --protocol {input.protocol:q}"
        " --index {input.index:q} --out {output.npy:q} > {log:q} 2>&1"
