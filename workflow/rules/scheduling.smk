# Local runs: Snakemake's scheduler without its job-rate limiter.
#
# Snakemake's default --max-jobs-per-timespan (100/1s) arms a 1 s timer after every pass of the
# scheduling loop while jobs run, and each finished job starts one more such chain, so the
# number of passes per second grows with the finished jobs (upstream: snakemake/snakemake
# #2354). Each pass re-selects among all ready jobs and stats every input they name. Measured
# on the 502-job `synthetic` study (2 cores): the Snakemake process's own CPU grew from
# 6 s to 18 s a minute over the first 42 jobs, taking the cores the trainings need (without
# it: 177 CPU-s in the whole 74-minute run); on 200 `sleep 1` jobs it cost 20.3 CPU-s with
# the limiter and 9.5 without (one run each, by hand; benchmarks/bench_scheduler.py runs the
# same comparison). A local run starts jobs only as cores free up, so the limiter guards
# nothing there; cluster runs (an executor plugin, not local) keep it for the controller.
onstart:
    if workflow.local_exec and getattr(workflow, "scheduler", None) is not None:
        workflow.scheduler.job_rate_limiter = None
