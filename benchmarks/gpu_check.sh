#!/usr/bin/env bash
# The GPU check of the device path (run on a machine with CUDA): the pipeline tests with the
# default device (auto = CUDA), the CUDA-vs-CPU parity test, a train/inference throughput
# figure for a MiniLM-L6-shaped encoder on each device, and bf16 training of an XLM-R-base
# shape under accelerate launch against HF Trainer (benchmarks/gpu_bf16_xlmr.py). Needs torch with CUDA, transformers,
# tokenizers, safetensors, pandas, scipy, pyyaml, seqeval and submitit importable; the package
# itself is used from src/ (PYTHONPATH) so any torch build will do.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
python3 - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
PY
python3 -m pytest -q -p no:cacheprovider \
  tests/training/test_runtime.py tests/pipeline/test_pipeline.py tests/pipeline/test_qa_pipeline.py \
  tests/retrieval/test_retrieval_pipeline.py tests/pipeline/test_tagging_pipeline.py tests/pipeline/test_choice_pipeline.py \
  tests/training/test_selection.py tests/training/test_multitask.py tests/training/test_mlm.py \
  tests/pipeline/test_intermediate_tasks_pipeline.py
rc=$?
python3 - <<'PY'
# MiniLM-L6 shape (random weights: speed does not depend on them), batch 32 x 128 tokens
import time, torch
from transformers import BertConfig, BertModel
cfg = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                 intermediate_size=1536, vocab_size=30522)
for dev in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
    m = BertModel(cfg).to(dev)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-5, fused=True)
    x = torch.randint(1000, 20000, (32, 128), device=dev); a = torch.ones_like(x)
    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()
    for i in range(13):
        if i == 3:
            sync(); t = time.perf_counter()
        m(input_ids=x, attention_mask=a).last_hidden_state.mean().backward()
        opt.step(); opt.zero_grad()
    sync(); tr = 10 * 32 / (time.perf_counter() - t)
    m.eval()
    with torch.inference_mode():
        for i in range(13):
            if i == 3:
                sync(); t = time.perf_counter()
            m(input_ids=x, attention_mask=a)
        sync(); inf = 10 * 32 / (time.perf_counter() - t)
    print(f"{dev}: train {tr:.0f} ex/s, inference {inf:.0f} ex/s (fp32, 32 x 128 tokens)")
PY
# bf16 training of an XLM-R-base-shaped model (random init, no download) under accelerate's
# launcher: xstilts' loop (training.precision: bf16, its Accelerator) vs HF Trainer bf16=True
python3 -m accelerate.commands.launch --num_processes 1 --num_machines 1 --mixed_precision no \
  --dynamo_backend no benchmarks/gpu_bf16_xlmr.py --steps 60 --repeats 3 || rc=1
exit $rc
