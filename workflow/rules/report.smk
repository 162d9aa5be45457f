# Figures and the report.


rule figures:
    input:
        experiment="results/{exp}/experiment.json",
        comparison="results/{exp}/stats/comparison.tsv",
        evaluations=lambda w: evaluations(w.exp),
        metrics=lambda w: run_seed_paths(w.exp, "results/{exp}/pretrain/{run}/seed{seed}/metrics.jsonl"),
        efficiency=lambda w: run_seed_paths(w.exp, "results/{exp}/pretrain/{run}/seed{seed}/efficiency.json"),
        # t-SNE and retrieval demo: seed 0 of the study's main runs on the pretraining data
        # (or the first evaluated dataset, when the pretraining one has no labels)
        embeddings=lambda w: figure_embeddings(w.exp),
        labels=lambda w: f"results/{w.exp}/labels/{figure_dataset(w.exp)}.npz",
        index=lambda w: f"results/{w.exp}/frames/{figure_dataset(w.exp)}/index.tsv",
        # the efficiency table's cost comparison of runs trained on CPU (criterion 4's)
        step_benchmark=lambda w: step_benchmarks(w.exp),
        code=stage_code("figures"),
    output:
        per_task="results/{exp}/images/per_task_f1.pdf",
        loss="results/{exp}/images/loss_curves.pdf",
        distance="results/{exp}/images/distance_vs_dt.pdf",
        manifest="results/{exp}/images/manifest.json",
        # the PNGs again, for the HTML report (`snakemake --report`), which takes them by
        # pattern: which figures a study has depends on its runs (ablations) and embeddings
        # (t-SNE, retrieval); each described by workflow/report/figures.rst
        report_pngs=report(
            directory("results/{exp}/report/figures"),
            patterns=["{figure}.png"],
            caption="../report/figures.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    params:
        out_dir=lambda w: f"results/{w.exp}/images",
        step_benchmark=lambda w, input: (f"--step-benchmark {input.step_benchmark}"
                                         if input.step_benchmark else ""),
    log:
        "results/{exp}/logs/figures.log",
    benchmark:
        "results/{exp}/benchmarks/figures.tsv"
    threads: stage_threads("figures")
    resources:
        **stage_resources("figures"),
    conda:
        ENV
    shell:
        "twbyol figures --experiment {input.experiment} --comparison {input.comparison}"
        " --evaluations {input.evaluations} --metrics {input.metrics} --efficiency {input.efficiency}"
        " --embeddings {input.embeddings} --labels {input.labels} --index {input.index}"
        " {params.step_benchmark} --out-dir {params.out_dir} --report-dir {output.report_pngs} > {log} 2>&1"


rule ethogram:
    """Predicted above labelled behaviour over time, for a few clips of one dataset; and every
    predicted video's calls, labels and score traces, a page each."""
    input:
        predictions=lambda w: ethogram_predictions(w.exp, w.dataset),
        labels="results/{exp}/labels/{dataset}.npz",
        index="results/{exp}/frames/{dataset}/index.tsv",
        code=stage_code("ethogram"),
    output:
        pdf="results/{exp}/images/ethogram_{dataset}.pdf",
        png=report(
            "results/{exp}/images/ethogram_{dataset}.png",
            caption="../report/ethogram.rst",
            category="Ethograms",
            labels={"dataset": "{dataset}", "figure": "clips shown"},
        ),
        videos=report(
            "results/{exp}/images/ethogram_{dataset}_videos.pdf",
            caption="../report/ethogram_videos.rst",
            category="Ethograms",
            labels={"dataset": "{dataset}", "figure": "every video, a page each"},
        ),
        manifest="results/{exp}/images/ethogram_{dataset}.json",
    params:
        out_dir=lambda w: f"results/{w.exp}/images",
    log:
        "results/{exp}/logs/ethogram/{dataset}.log",
    benchmark:
        "results/{exp}/benchmarks/ethogram/{dataset}.tsv"
    threads: stage_threads("ethogram")
    resources:
        **stage_resources("ethogram"),
    conda:
        ENV
    shell:
        "twbyol ethogram --predictions {input.predictions:q} --labels {input.labels:q} --index {input.index:q}"
        " --dataset {wildcards.dataset} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule export:
    """Per predicted video (labelled and unlabelled): bouts table, time budget, BORIS tabular
    events and NWB file; bouts and time budget across the videos."""
    input:
        predictions="results/{exp}/predict/{run}/seed{seed}/{dataset}",
        code=stage_code("export"),
    output:
        folder=directory("results/{exp}/export/{run}/seed{seed}/{dataset}"),
        bouts=report(
            "results/{exp}/export/{run}/seed{seed}/{dataset}.bouts.csv",
            caption="../report/bouts.rst",
            category="Predictions",
            labels={"dataset": "{dataset}", "run": "{run}", "seed": "{seed}", "table": "bouts"},
        ),
        time_budget=report(
            "results/{exp}/export/{run}/seed{seed}/{dataset}.time_budget.csv",
            caption="../report/time_budget.rst",
            category="Predictions",
            labels={"dataset": "{dataset}", "run": "{run}", "seed": "{seed}", "table": "time budget"},
        ),
    log:
        "results/{exp}/logs/export/{run}/seed{seed}/{dataset}.log",
    benchmark:
        "results/{exp}/benchmarks/export/{run}/seed{seed}/{dataset}.tsv"
    threads: stage_threads("export")
    resources:
        **stage_resources("export"),
    conda:
        ENV
    shell:
        "twbyol export --predictions {input.predictions:q} --out-dir {output.folder:q}"
        " --bouts {output.bouts:q} --time-budget {output.time_budget:q} > {log:q} 2>&1"


rule report:
    input:
        experiment="results/{exp}/experiment.json",
        stats=rules.stats.output,
        manifest="results/{exp}/images/manifest.json",
        ethograms=lambda w: ethograms(w.exp),
        predictions=lambda w: predictions(w.exp),
        # the export stage's time budget across the videos of each predictions folder
        time_budgets=lambda w: time_budgets(w.exp),
        protocols=lambda w: protocols(w.exp),
        code=stage_code("report"),
    output:
        md=report(
            "results/{exp}/report.md",
            caption="../report/study_report.rst",
            category="Study",
            labels={"result": "report.md: the verdict and the write-up"},
        ),
        # the same as a page the HTML report shows (figures inlined): the verdict on the page
        html=report(
            "results/{exp}/report/study.html",
            caption="../report/study_page.rst",
            category="Study",
            labels={"result": "the report, as a page"},
        ),
    params:
        stats_dir=lambda w: f"results/{w.exp}/stats",
    log:
        "results/{exp}/logs/report.log",
    benchmark:
        "results/{exp}/benchmarks/report.tsv"
    threads: stage_threads("report")
    resources:
        **stage_resources("report"),
    conda:
        ENV
    shell:
        "twbyol report --experiment {input.experiment} --stats-dir {params.stats_dir}"
        " --figures-manifest {input.manifest} {input.ethograms} --protocols {input.protocols:q}"
        " --time-budgets {input.time_budgets:q} --out {output.md} --html-out {output.html} --code-version \"$(git describe --always --dirty 2>/dev/null || echo unknown)\" > {log} 2>&1"
