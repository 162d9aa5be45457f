# Evaluation: linear probes (MABe22 protocol), kNN, rare-action F1, few-shot probes and
# temporal locality of one run's embedding of one dataset.


rule evaluate:
    input:
        embedding="results/{exp}/embed/{run}/seed{seed}/{dataset}.npy",
        labels="results/{exp}/labels/{dataset}.npz",
        protocol="results/{exp}/labels/{dataset}.protocol.json",
        index="results/{exp}/frames/{dataset}/index.tsv",
        code=stage_code("evaluate"),
    output:
        "results/{exp}/evaluate/{run}/seed{seed}/{dataset}.json",
    params:
        v=lambda w: canonical(evaluation_cfg(w)),
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
        " --protocol {input.protocol:q} --out {output:q} --run-id {wildcards.run} --seed {wildcards.seed} --dataset {wildcards.dataset}"
        " --method {params.method} --split-seed {params.v[split_seed]} --test-size {params.v[test_size]}"
        " --knn-k {params.v[knn_k]} --num-frames {params.v[num_frames]} --frame-stride {params.v[frame_stride]}"
        " --window-stride {params.v[window_stride]} --crop-policy {params.v[crop_policy]}"
        " --crop-rho {params.v[crop_rho]} --crop-gap {params.v[crop_gap]} > {log:q} 2>&1"


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
