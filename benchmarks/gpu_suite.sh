#!/usr/bin/env bash
# The GPU figures of the study on one GPU node: a real Slow-R50 pretraining run with the
# augmentation on the GPU and in the loader, each against the bare step (in its variants:
# memory format, LARS loop / foreach, torch.compile; TFLOP/s vs peak), and the embedding pass
# against its bare forward (bench_gpu_run.py); then the train-step comparisons at full scale
# in bf16 (TW-BYOL vs uniform, ours vs pytorchvideo's BYOL), with and without cudnn
# autotuning, and channels-last. Estimated ~10 minutes on an H200 (not yet timed whole).
#     bash benchmarks/gpu_suite.sh [LOG_DIR]
# Logs go to LOG_DIR (default results/benchmarks/gpu). Prints figures; asserts nothing.
set -euo pipefail
log=${1:-results/benchmarks/gpu}
mkdir -p "$log"
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
py=${PYTHON:-python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$log/gpu.txt"
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())" | tee -a "$log/gpu.txt"
$py benchmarks/bench_gpu_run.py --steps 60 --clips 16 --frames 300 --compile 2>&1 | tee "$log/run.txt"
for flag in "" --cudnn-benchmark "--cudnn-benchmark --channels-last true"; do
    $py benchmarks/bench_train_step.py --backbone slow_r50 --batch 16 --frames 8 --size 224 \
        --amp bf16 --steps 20 $flag 2>&1 | tee "$log/step_bf16$(echo "$flag" | tr -d ' -' | sed 's/^./_&/').txt"
done
