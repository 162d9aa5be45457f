# Evaluation: linear probes (MABe22 protocol), kNN, rare-action recall, few-shot probes and
# temporal locality of one run's embedding of one dataset.


rule evaluate:
    input:
        embedding="results/{exp}/embed/{run}/seed{seed}/{dataset}.npy",
        labels="results/{exp}/labels/{dataset}.npz",
        index="results/{exp}/frames/{dataset}/index.tsv",
        code=code("evaluate.py", "probe.py", "split.py", "temporal.py", "data/index.py"),
    output:
        "results/{exp}/evaluate/{run}/seed{seed}/{dataset}.json",
    params:
        v=evaluation_cfg,
        method=lambda w: exp_cfg(w)["runs"][w.run]["method"],
    log:
        "results/{exp}/logs/evaluate/{run}/seed{seed}/{dataset}.log",
    threads: stage_threads("evaluate")
    resources:
        **stage_resources("evaluate"),
    conda:
        ENV
    shell:
        "twbyol evaluate --embedding {input.embedding} --labels {input.labels} --index {input.index}"
        " --out {output} --run-id {wildcards.run} --seed {wildcards.seed} --dataset {wildcards.dataset}"
        " --method {params.method} --split-seed {params.v[split_seed]} --test-size {params.v[test_size]}"
        " --knn-k {params.v[knn_k]} --horizon {params.v[horizon]} > {log} 2>&1"
