# twbyol: the Time-Weighted BYOL study as a workflow. Table of contents only; the logic
# lives in the twbyol package and the rules in workflow/rules/.
#   snakemake --cores 1 smoke                 every stage on tiny synthetic data
#   snakemake --cores N synthetic             the whole study matrix on synthetic data
#   snakemake --profile profiles/slurm        the MABe22 study on a SLURM cluster
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


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
        lambda w: report_for("mabe22"),
        lambda w: submissions("mabe22"),


rule smoke:
    input:
        lambda w: report_for("smoke"),
        lambda w: submissions("smoke"),


rule synthetic:
    input:
        lambda w: report_for("synthetic"),
        lambda w: submissions("synthetic"),


rule real:
    input:
        lambda w: report_for("real"),


rule mabe22:
    input:
        lambda w: report_for("mabe22"),
        lambda w: submissions("mabe22"),
