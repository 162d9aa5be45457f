#!/usr/bin/env bash
# The GPU figures of the study on one GPU node: a real Slow-R50 pretraining run and embedding
# pass (bench_gpu_run.py), then the train-step comparisons at full scale in bf16 (TW-BYOL vs
# uniform, ours vs pytorchvideo's BYOL), with and without cudnn autotuning.
#     bash benchmarks/gpu_suite.sh [LOG_DIR]
# Logs go to LOG_DIR (default results/benchmarks/gpu). Prints figures; asserts nothing.
set -euo pipefail
log=${1:-results/benchmarks/gpu}
mkdir -p "$log"
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
py=${PYTHON:-python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$log/gpu.txt"
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())" | tee -a "$log/gpu.txt"
$py benchmarks/bench_gpu_run.py --steps 60 --clips 16 --frames 300 2>&1 | tee "$log/run.txt"
for flag in "" --cudnn-benchmark; do
    $py benchmarks/bench_train_step.py --backbone slow_r50 --batch 16 --frames 8 --size 224 \
        --amp bf16 --steps 20 $flag 2>&1 | tee "$log/step_bf16${flag:+_cudnn}.txt"
done
