#!/usr/bin/env bash
# On a GPU machine (see the device tool), in two calls that each fit its 10-minute limit: build
# the C kernels in place, then
#   bash benchmarks/gpu_check.sh goals   # the goals bench, one image's calls back to back,
#                                        # the CUDA tests, the layer (< 9.5 min)
#   bash benchmarks/gpu_check.sh rest    # the Triton conformance suite, the full CUDA bench, int16
#                                        # CT slices, nonzero, the input pipeline (< 9.5 min)
# Logs under $OUT. Wheels the machine lacks (albumentations, kornia;
# ../shared/tools/device_wheels.sh downloads them into .whl) are installed first.
set -uo pipefail
stage=${1:-goals}
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
python3 setup.py build_ext --inplace >"$out/build.log" 2>&1 || { tail -20 "$out/build.log"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, triton, numpy, cv2; print('torch', torch.__version__, 'triton', triton.__version__, 'numpy', numpy.__version__, 'cv2', cv2.__version__)" | tee -a "$out/gpu.txt"
if [ "$stage" = goals ]; then
  # The goals first: every mode, uint8 -> float16, one 224² image and a 256 batch.
  timeout 190 python3 benchmarks/bench_torch.py --device cuda --no-progress --dtypes uint8 --out-dtype float16 \
    --shapes 3x224x224 256x3x224x224 --markdown "$out/goals.md" >"$out/goals.log" 2>&1
  echo "goals exit $?"; tail -40 "$out/goals.log"
  # One image's whole calls, back to back: direct launches, kernel[grid] and plain eager torch.
  timeout 50 python3 benchmarks/bench_triton_host.py --device cuda --calls 500 --markdown "$out/host_cuda.md" \
    >"$out/host_cuda.log" 2>&1
  echo "host exit $?"; tail -12 "$out/host_cuda.log"
  timeout 220 python3 -m pytest -m cuda -q -p no:randomly -p no:cacheprovider -o addopts="" tests/ 2>&1 \
    | tee "$out/cuda_tests.log" | tail -25
  # NormalizeLayer eager, under torch.compile and with CUDA graphs (issue 13: not slower compiled).
  timeout 80 python3 benchmarks/bench_layer.py --device cuda --budget 0.1 --markdown "$out/layer_cuda.md" \
    >"$out/layer_cuda.log" 2>&1
  echo "layer exit $?"; tail -12 "$out/layer_cuda.log"
else
  # The conformance suite on CUDA tensors through the compiled Triton kernels.
  timeout 190 python3 -m pytest -q -p no:randomly -p no:cacheprovider -o addopts="" tests/test_conformance.py \
    -k torch_triton 2>&1 | tee "$out/triton_conformance.log" | tail -5
  # The whole suite into RESULTS.md's CUDA section.
  timeout 190 python3 benchmarks/bench_torch.py --device cuda --no-progress --markdown "$out/RESULTS_cuda.md" \
    >"$out/bench_cuda.log" 2>&1
  echo "bench exit $?"; tail -45 "$out/bench_cuda.log"
  # CT slices (int16): 16-bit percentiles from two levels of histograms in the kernels, against
  # torch.quantile; the other modes beside them.
  timeout 70 python3 benchmarks/bench_torch.py --device cuda --no-progress --dtypes int16 --out-dtype float16 \
    --modes percentile percentile_per_channel robust image --shapes 1x512x512 32x1x512x512 --markdown "$out/int16_cuda.md" >"$out/int16_cuda.log" 2>&1
  echo "int16 exit $?"; tail -16 "$out/int16_cuda.log"
  # nonzero=True in the kernels, against the Torch-op route and MONAI's boolean indexing.
  timeout 40 python3 benchmarks/bench_nonzero_torch.py --device cuda --budget 0.05 --markdown "$out/nonzero_cuda.md" \
    >"$out/nonzero_cuda.log" 2>&1
  echo "nonzero exit $?"; tail -26 "$out/nonzero_cuda.log"
  # The input pipeline with the uint8 batch normalized on the GPU (issue 14's CUDA row).
  timeout 100 python3 -m norm_transforms bench --pipeline --device cuda --workers 0 --batches 8 --no-progress \
    --markdown "$out/pipeline_cuda.md" >"$out/pipeline_cuda.log" 2>&1
  echo "pipeline exit $?"; tail -16 "$out/pipeline_cuda.log"
fi
