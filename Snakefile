# twbyol: the Time-Weighted BYOL study as a workflow. Table of contents only; the logic
# lives in the twbyol package and the rules in workflow/rules/.
#   snakemake --cores 1 smoke                 every stage on tiny synthetic data
#   snakemake --cores N synthetic             the whole study matrix on synthetic data
#   snakemake --cores N NAME [--configfile mine.yaml]   any experiment, by its name
#   snakemake --profile profiles/slurm        the MABe22 study on a SLURM cluster
#   snakemake --report results/NAME/report.html NAME   its results as one HTML page
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# the HTML report's front page (`snakemake --report`); each result's caption is beside it
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/scheduling.smk"


wildcard_constraints:
    exp="|".join(EXPERIMENTS),
    dataset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    run=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    seed=r"\d+",
    shard=r"\d+",


include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        lambda w: experiment_targets("mabe22"),


# every experiment of the merged config (config/config.yaml and any --configfile) is a target
# of its name: `snakemake --cores N NAME` builds its report and submissions
check_names([r.name for r in workflow.rules])
for _exp in EXPERIMENTS:

    rule:
        name:
            _exp
        input:
            lambda w, exp=_exp: experiment_targets(exp),


rule unknown_target:
    """`snakemake NAME` where NAME is no experiment, rule or path: fails at planning with the
    experiments defined (its input function raises), not with 'No rule to produce NAME'."""
    output:
        "{target}",
    wildcard_constraints:
        target=r"[A-Za-z0-9_-]+",
    input:
        lambda w: unknown_target(w.target, [r.name for r in workflow.rules]),
    log:
        "results/logs/unknown_target/{target}.log",  # never written: planning fails first
    localrule: True
    conda:
        ENV
    shell:
        "false > {log}"
