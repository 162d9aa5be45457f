# Embedding: per-frame embeddings of every evaluation dataset from each pretrained model.


rule embed:
    input:
        model="results/{exp}/pretrain/{run}/seed{seed}/model.pt",
        shards=lambda w: frame_shards(w.exp, w.dataset),
        index="results/{exp}/frames/{dataset}/index.tsv",
        code=stage_code("embed"),
    output:
        npy="results/{exp}/embed/{run}/seed{seed}/{dataset}.npy",
        projection="results/{exp}/embed/{run}/seed{seed}/{dataset}.projection.npz",
    params:
        cfg=lambda w: as_json(embedding_cfg(w)),
        frames_dir=lambda w: f"results/{w.exp}/frames/{w.dataset}",
    log:
        "results/{exp}/logs/embed/{run}/seed{seed}/{dataset}.log",
    threads: stage_threads("embed")
    resources:
        **stage_resources("embed"),
    benchmark:
        "results/{exp}/benchmarks/embed/{run}/seed{seed}/{dataset}.tsv"
    conda:
        ENV
    shell:
        "twbyol embed --model {input.model:q} --frames-dir {params.frames_dir:q} --index {input.index:q}"
        " --out {output.npy:q} --projection {output.projection:q} --config {params.cfg:q} > {log:q} 2>&1"
