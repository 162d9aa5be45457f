#!/usr/bin/env bash
# The GPU figures of the study on one GPU node, each variant guarded (one that fails is
# recorded and the rest still run), with a summary table at the end:
#   env                   nvidia-smi, torch / CUDA / cuDNN versions, torch.cuda.is_available();
#                         without a usable CUDA device: why (torch's warning) and exit 2, before
#                         any benchmark
#   augment_check         the device augmentation on CUDA vs the CPU, same batch and parameters
#                         (check_augment_device.py: PASS at <= 1 grey level)
#   gpu_run               a real `mabe22` pretraining run (Slow-R50 8x8, its precision: fp32,
#                         TF32 convolutions) with the augmentation on the device and in the
#                         loader, 200 steady steps each, against the bare step and its variants
#                         (memory format, LARS loop / foreach, torch.compile; TFLOP/s against
#                         the peak of the precision run on this card; each variant's peak
#                         memory), the embed stage against its bare forward (bench_gpu_run.py)
#   step_bf16*            the train-step comparisons at full scale in bf16 (TW-BYOL vs
#                         uniform, ours vs pytorchvideo's BYOL), with and without cudnn
#                         autotuning, and channels-last (bench_train_step.py)
#   ddp_<method>_<N>gpus  with 2+ GPUs: byol, moco_v3, time_contrast under DDP on NCCL over
#                         every GPU, steps/s, host-device syncs and collectives per step
#                         (bench_ddp.py via torchrun)
#     bash benchmarks/gpu_suite.sh [LOG_DIR]
# Logs go to LOG_DIR (default results/benchmarks/gpu), one file per variant. Prints figures;
# asserts nothing; exits 1 if any variant failed, 2 if there is no CUDA device.
#
# Time on one H100/H200, estimated (not yet timed whole): the bf16 Slow-R50 step at 16 clips
# took 137-144 ms on an H200 (docs/gpu.md, On a GPU); the `mabe22` recipe's fp32 step (TF32
# convolutions) is taken as 0.3-0.5 s (~2-3x it; not measured). checks ~0.5 min; gpu_run:
# 2 real runs x (205 steps x 0.3-0.5 s + ~20 s start-up) = 2.4-4.1 min, bare step
# 4 variants x 23 rounds x 0.3-0.5 s = 0.5-0.8 min plus torch.compile's compilation
# (assumed 1-2 min), embed ~0.3 min, rendering ~5 s (0.46 s a clip on one core here);
# step_bf16*: 3 x (2 comparisons x 23 rounds x 2 models x 0.14 s + ~15 s builds) = 1.5-2 min.
# Total ~6.5-10 min. The DDP section adds ~1 min per method (torchrun and NCCL start-up,
# 56 steps, the run's checkpoint): ~3 min with 2+ GPUs.
set -uo pipefail
log=${1:-results/benchmarks/gpu}
mkdir -p "$log"
export PYTHONUNBUFFERED=1
unset PYTHONWARNINGS # torch's warnings (a driver too old for its CUDA build) must show
py=${PYTHON:-python}
summary=()
failed=0
t_suite=$SECONDS

# variant NAME COMMAND...: runs COMMAND, its output to the screen and to $log/NAME.txt;
# records ok or FAILED (rc N) with its time and log, and goes on either way
variant() {
    local name=$1 out="$log/$1.txt" t0=$SECONDS rc
    shift
    echo "=== $name: $*"
    "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    local result=ok
    if ((rc != 0)); then
        result="FAILED (rc $rc)"
        echo "FAILED (rc $rc): see $out" | tee -a "$out"
        failed=$((failed + 1))
    fi
    summary+=("$(printf '%-40s %-14s %5d s  %s' "$name" "$result" $((SECONDS - t0)) "$out")")
}

# ---- the machine: recorded first; no benchmark without a usable CUDA device
{
    echo "date $(date -Is), host $(hostname)"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi
        nvidia-smi -L
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    else
        echo "nvidia-smi: not found"
    fi
    # -W always: torch's warning on why CUDA cannot be used is printed, whatever the environment
    $py -W always -c "import torch
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())
print('torch.cuda.is_available()', torch.cuda.is_available())
print('torch.cuda.device_count()', torch.cuda.device_count() if torch.cuda.is_available() else 0)"
} 2>&1 | tee "$log/env.txt"
ngpu=$(sed -n 's/^torch.cuda.device_count() \([0-9]*\)$/\1/p' "$log/env.txt")
if [[ -z $ngpu || $ngpu -lt 1 ]]; then
    echo "no usable CUDA device: torch.cuda.is_available() is not True (torch's warning above," \
        "if any, says why: e.g. an NVIDIA driver too old for torch's CUDA build); no benchmark" \
        "run. The machine's record: $log/env.txt" >&2
    exit 2
fi
echo "torch sees $ngpu GPU(s)"

# ---- one GPU
variant augment_check $py benchmarks/check_augment_device.py
variant gpu_run $py benchmarks/bench_gpu_run.py --clips 16 --frames 300 --compile
for v in "step_bf16|" "step_bf16_cudnn_benchmark|--cudnn-benchmark" \
    "step_bf16_cudnn_benchmark_channels_last|--cudnn-benchmark --channels-last true"; do
    # shellcheck disable=SC2086  # the flags split into words on purpose
    variant "${v%%|*}" $py benchmarks/bench_train_step.py --backbone slow_r50 --batch 16 \
        --frames 8 --size 224 --amp bf16 --steps 20 ${v#*|}
done

# ---- every GPU of the node: DDP on NCCL
if ((ngpu >= 2)); then
    for method in byol moco_v3 time_contrast; do
        variant "ddp_${method}_${ngpu}gpus" $py -m torch.distributed.run --standalone \
            --nproc_per_node "$ngpu" benchmarks/bench_ddp.py --method "$method" \
            --json "$log/ddp_${method}_${ngpu}gpus.json"
    done
else
    echo "one GPU: no DDP section (it runs with 2 or more)"
fi

echo
echo "=== summary ($((SECONDS - t_suite)) s in all; logs in $log)"
printf '%-40s %-14s %7s  %s\n' variant result time log
printf '%s\n' "${summary[@]}"
((failed == 0)) || exit 1
