#!/bin/bash
# The script of the second GPU call behind bench/gpu/RECIPES.md (docs/experiments-gpu.md, "How far the longer schedule goes"), kept
# as it ran. The stem network with the clean clips only (the feature file of bench/gpu/run.sh: what fits the 64 MiB a
# call may carry) on each inner fold (validate on v in 1-4, train on the other three; fold 5 never seen), seed 0, at
# 200 epochs (the shipped schedule) and 300 epochs, eight runs side by side on one GPU. Evaluation every 2.5 epochs only (95 steps)
# (the saved model is the weight average at the end either way); no checkpoints. Results: $OUT/summary.json,
# $OUT/runs.tgz, $OUT/gpu.txt.
set -u
LIMIT=${LIMIT:-560}; XZ=${XZ:-.gpu/esc50-clean.safetensors.xz}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 3
export PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
R=/tmp/gpu-runs; rm -rf $R; mkdir -p $R/logs; F=$R/features.safetensors
python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'), 1<<22)" $XZ $F || exit 4
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; date -u) > $OUT/gpu.txt 2>&1
python3 -c "
import torch, transformers, datasets, accelerate
print('torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__,
      'accelerate', accelerate.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())
from esc50_hf.evaluation.metrics import load_metric; load_metric('accuracy'); load_metric('f1')
" >> $OUT/gpu.txt 2>&1 || { cat $OUT/gpu.txt; exit 5; }
cat $OUT/gpu.txt
common="--features_file $F --augmented_variants 0 --report_to none --disable_tqdm true --seed 0 --save_strategy no
  --eval_strategy steps --eval_steps 95"
for v in 1 2 3 4; do
  train=$(for f in 1 2 3 4; do [ $f != $v ] && printf "%s " $f; done)
  timeout $LIMIT python3 train.py $common --train_folds $train --validation_fold $v --num_train_epochs 300 \
    --output_dir $R/inner/v$v/stem-300-clean-s0 --torch_threads 2 > $R/logs/stem-300-clean-v$v.log 2>&1 &
  sleep 1
  timeout $LIMIT python3 train.py $common --train_folds $train --validation_fold $v --num_train_epochs 200 \
    --output_dir $R/inner/v$v/stem-long-clean-s0 --torch_threads 1 > $R/logs/stem-long-clean-v$v.log 2>&1 &
  sleep 1
done
wait
python3 .gpu/collect.py $R $OUT
