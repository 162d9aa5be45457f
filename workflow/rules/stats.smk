# Statistics: the experiment record, then paired t-tests across seeds and the pass criteria.


localrules:
    experiment_record,


rule experiment_record:
    """results/{exp}/experiment.json: what stats, figures and report need to know of the design."""
    output:
        "results/{exp}/experiment.json",
    params:
        record=lambda w: as_json({"name": w.exp, **{k: exp_cfg(w)[k] for k in (
            "description", "seeds", "pretrain_dataset", "eval_datasets", "runs", "study",
            "backbone", "crop", "training")}}),
    log:
        "results/{exp}/logs/experiment_record.log",
    conda:
        ENV
    shell:
        "twbyol record-experiment --out {output} --record {params.record:q} > {log} 2>&1"


rule stats:
    input:
        experiment="results/{exp}/experiment.json",
        evaluations=lambda w: evaluations(w.exp),
        efficiency=lambda w: run_seed_paths(w.exp, "results/{exp}/pretrain/{run}/seed{seed}/efficiency.json"),
        code=code("stats.py"),
    output:
        comparison="results/{exp}/stats/comparison.tsv",
        ttests="results/{exp}/stats/ttests.json",
        criteria="results/{exp}/stats/criteria.json",
    params:
        out_dir=lambda w: f"results/{w.exp}/stats",
    log:
        "results/{exp}/logs/stats.log",
    threads: stage_threads("stats")
    resources:
        **stage_resources("stats"),
    conda:
        ENV
    shell:
        "twbyol stats --experiment {input.experiment} --evaluations {input.evaluations}"
        " --efficiency {input.efficiency} --out-dir {params.out_dir} > {log} 2>&1"
