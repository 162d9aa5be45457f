# Embedding: per-frame embeddings of every evaluation dataset from each pretrained model.


rule embed:
    input:
        model="results/{exp}/pretrain/{run}/seed{seed}/model.pt",
        shards=lambda w: frame_shards(w.exp, w.dataset),
        index="results/{exp}/frames/{dataset}/index.tsv",
        code=code("embed.py", "models/backbones.py", "data/sampling.py", "split.py"),
    output:
        "results/{exp}/embed/{run}/seed{seed}/{dataset}.npy",
    params:
        e=lambda w: embedding_cfg(w),
        v=lambda w: {k: evaluation_cfg(w)[k] for k in ("split_seed", "test_size")},
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
        "twbyol embed --model {input.model} --frames-dir {params.frames_dir} --index {input.index}"
        " --out {output} --window-stride {params.e[window_stride]} --batch-size {params.e[batch_size]}"
        " --max-dim {params.e[max_dim]} --split-seed {params.v[split_seed]}"
        " --test-size {params.v[test_size]} > {log} 2>&1"
