# Statistics: the experiment record, the step benchmark, then paired t-tests across seeds and
# the pass criteria.


localrules:
    experiment_record,


rule experiment_record:
    """results/{exp}/experiment.json: what stats, figures and report need to know of the design."""
    input:
        code=stage_code("record-experiment"),
    output:
        "results/{exp}/experiment.json",
    params:
        record=lambda w: as_json(experiment_record(w.exp)),
    log:
        "results/{exp}/logs/experiment_record.log",
    conda:
        ENV
    shell:
        "twbyol record-experiment --out {output} --record {params.record:q} > {log} 2>&1"


rule step_benchmark:
    """Criterion 4's evidence where the runs trained on CPU (where wall time on a shared machine
    measures the machine): the proposed and the baseline run's training steps, built from their
    resolved configs, timed interleaved in one process (twbyol.benchmark). It reads no
    pretraining output, so it runs early; its inputs are the code it runs."""
    input:
        code=lambda w: stage_code("step-benchmark", [exp_cfg(w)["runs"][r]["method"] for r in study_pair(w)]),
    output:
        "results/{exp}/stats/step_benchmark.json",
    params:
        configs=lambda w: as_json({r: run_config(w.exp, r, exp_cfg(w)["seeds"][0]) for r in study_pair(w)}),
        proposed=lambda w: study_pair(w)[0],
        baseline=lambda w: study_pair(w)[1],
    log:
        "results/{exp}/logs/step_benchmark.log",
    benchmark:
        "results/{exp}/benchmarks/step_benchmark.tsv"
    threads: stage_threads("stats")
    resources:
        **stage_resources("stats"),
    conda:
        ENV
    shell:
        "twbyol step-benchmark --configs {params.configs:q} --proposed {params.proposed}"
        " --baseline {params.baseline} --threads {threads} --out {output:q} > {log:q} 2>&1"


rule stats:
    input:
        experiment="results/{exp}/experiment.json",
        evaluations=lambda w: evaluations(w.exp),
        efficiency=lambda w: run_seed_paths(w.exp, "results/{exp}/pretrain/{run}/seed{seed}/efficiency.json"),
        # criterion 4 reads it when the runs trained on CPU (an experiment with a study)
        step_benchmark=lambda w: step_benchmarks(w.exp),
        code=stage_code("stats"),
    output:
        comparison=report(
            "results/{exp}/stats/comparison.tsv",
            caption="../report/comparison.rst",
            category="Study",
            labels={"result": "comparison.tsv: every score"},
        ),
        ttests="results/{exp}/stats/ttests.json",
        criteria=report(
            "results/{exp}/stats/criteria.json",
            caption="../report/criteria.rst",
            category="Study",
            labels={"result": "criteria.json: the criteria judged"},
        ),
    params:
        out_dir=lambda w: f"results/{w.exp}/stats",
        step_benchmark=lambda w, input: (f"--step-benchmark {input.step_benchmark}"
                                         if input.step_benchmark else ""),
    log:
        "results/{exp}/logs/stats.log",
    benchmark:
        "results/{exp}/benchmarks/stats.tsv"
    threads: stage_threads("stats")
    resources:
        **stage_resources("stats"),
    conda:
        ENV
    shell:
        "twbyol stats --experiment {input.experiment} --evaluations {input.evaluations}"
        " --efficiency {input.efficiency} {params.step_benchmark}"
        " --out-dir {params.out_dir} > {log} 2>&1"
