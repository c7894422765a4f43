"""Sub-commands of `hamlet` that drive the inference engine.

Owns `hamlet llm-serve` (the engine behind an OpenAI-compatible HTTP API)
and `hamlet model info`. Imports nothing heavy until a command runs.
"""
from __future__ import annotations

import argparse
import json


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="local Hugging Face model folder or hub id (default: embedded SmolLM2-135M-Instruct)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--dtype", default="auto", help="auto (bfloat16), float32, bfloat16, float16")


def register(subparsers) -> None:
    serve = subparsers.add_parser("llm-serve", help="serve the language model over an OpenAI-compatible HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8008, help="0 picks a free port")
    _model_args(serve)
    serve.add_argument("--runner", default="auto", help="auto, process, thread, cuda")
    serve.add_argument("--max-batch", type=int, default=32)
    serve.add_argument("--max-queue", type=int, default=256)
    serve.set_defaults(func=run_llm_serve)

    model = subparsers.add_parser("model", help="inspect the language model")
    model_sub = model.add_subparsers(dest="model_command", metavar="ACTION")
    info = model_sub.add_parser("info", help="load the model and print what it is, its size, device and dtype")
    _model_args(info)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=run_model_info)
    model.set_defaults(func=lambda args: (model.print_help(), 2)[1])


def run_model_info(args: argparse.Namespace) -> int:
    from .model import load_model
    loaded = load_model(args.model, device=args.device, dtype=args.dtype)
    info = loaded.info()
    if args.json:
        print(json.dumps(info))
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            if key == "size_bytes":
                value = f"{value} ({value / 2**20:.1f} MiB)"
            print(f"{key:<{width}}  {value}")
    return 0


def run_llm_serve(args: argparse.Namespace) -> int:
    import asyncio

    from . import load_llm
    from .serve import LLMServer

    llm = load_llm(args.model, device=args.device, dtype=args.dtype, runner=args.runner,
                   max_batch=args.max_batch, max_queue=args.max_queue)

    async def main() -> None:
        server = LLMServer(llm, host=args.host, port=args.port)
        host, port = await server.start()
        print(f"hamlet llm-serve: http://{host}:{port}/v1 ({llm.info().get('name')}, "
              f"{llm.info().get('device')}, {llm.info().get('dtype')})", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        llm.close()
    return 0
