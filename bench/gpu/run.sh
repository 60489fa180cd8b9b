#!/bin/bash
# The script of the one GPU call behind bench/gpu/RECIPES.md (docs/experiments-gpu.md, "After the choice"), kept as it ran.
# (1) The recipe on fold 5 (folds 1-4 train) through `accelerate launch`, from a feature file of the clean clips
# (--augmented_variants 0, the one change the 64 MiB transfer forced); bf16 is the recipe's own --bf16, which the
# Trainer applies whatever accelerate's --mixed_precision says. (2) Alongside: three networks on the four inner folds
# (each of folds 1-4 validates once, the other three train; fold 5 never seen), seed 0, same features.
# It ran in a copy of this checkout with, beside it in .gpu/ (not in git): the feature file compressed with xz
# (`train.py --augmented_variants 0 --export_features`), collect.py (here beside this script) and wheels of the
# packages that machine lacked (transformers 5.24, datasets, evaluate, dill, multiprocess, soundfile, soxr, cffi,
# pycparser). Results: $OUT/summary.json, $OUT/runs.tgz, $OUT/gpu.txt.
set -u
LIMIT=${LIMIT:-400}; EXTRA=${EXTRA:-}; XZ=${XZ:-.gpu/esc50-clean.safetensors.xz}
if [ -z "${SKIP_PIP:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site
fi
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
R=/tmp/gpu-runs; rm -rf $R; mkdir -p $R/logs; F=$R/features.safetensors
python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'), 1<<22)" $XZ $F || exit 4
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; date -u) > $OUT/gpu.txt 2>&1
python3 -c "
import torch, transformers, datasets, pyarrow, accelerate, huggingface_hub, evaluate
print('torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__,
      'pyarrow', pyarrow.__version__, 'accelerate', accelerate.__version__, 'hub', huggingface_hub.__version__,
      'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())
from esc50_hf.evaluation.metrics import load_metric; load_metric('accuracy'); load_metric('f1')  # warm evaluate's module cache once
" >> $OUT/gpu.txt 2>&1 || { cat $OUT/gpu.txt; exit 5; }
cat $OUT/gpu.txt
common="--features_file $F --augmented_variants 0 --report_to none --disable_tqdm true --seed 0 $EXTRA"
timeout $LIMIT accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
  train.py $common --output_dir $R/fold5-s0 --torch_threads 2 > $R/logs/fold5-s0.log 2>&1 &
declare -A net=([stem]="--stem_channels 16" [wide]="--stem_channels 24 --block_channels 48 96 160 208" [base]="--stem_channels 0")
for v in ${INNER_FOLDS-1 2 3 4}; do
  train=$(for f in 1 2 3 4; do [ $f != $v ] && printf "%s " $f; done)
  for n in stem wide base; do
    sleep 1
    timeout $LIMIT python3 train.py $common --train_folds $train --validation_fold $v ${net[$n]} --output_dir $R/inner/$n-v$v \
      --torch_threads 1 --save_strategy no > $R/logs/$n-v$v.log 2>&1 &
  done
done
wait
python3 .gpu/collect.py $R $OUT
