"""The denoiser as inference-only code, for planning: ONNX Runtime (with the CUDA or TensorRT
execution provider where present) or a frozen TorchScript graph, behind the same call as the torch
module, so samplers, inpainting, guides and warm starts do not change.

Measured on one CPU thread (results/inference_speed.md): ONNX Runtime cuts a single call's overhead
(a 1M-parameter U-Net over 28 states: 0.7 ms against 2.5 ms in eager torch), but runs a batch of 16
candidates slower than torch (9.4 ms against 7.2 ms; frozen TorchScript 5.8 ms). `auto` therefore
sends small batches to ONNX Runtime and larger ones to frozen TorchScript. Guides that need gradients
(values, classifiers, costs) never pass through the denoiser, so nothing here needs autograd.
"""
from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

BACKENDS = ("auto", "torch", "onnx")
BACKEND_MEANING = ("how the denoiser runs: auto (ONNX Runtime for a few plans at once, frozen TorchScript for "
                   "batches of candidates) | onnx | torch")
ONNX_OPSET = 17
AUTO_ONNX_MAX_BATCH = 4  # auto: ONNX Runtime up to this batch, frozen TorchScript above (measured crossover)


def check_backend_name(name: str) -> None:
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")


def export_onnx(network: nn.Module, transition_dim: int, horizon: int, out=None, per_step_output: bool = True) -> bytes:
    """The network (trajectories (batch, horizon, transition_dim), steps (batch,)) -> its output (the
    same shape; (batch,) for a value model: per_step_output False), as an ONNX model with dynamic
    batch and horizon; written to `out` (a path) if given."""
    buffer = io.BytesIO()
    example = (torch.zeros(2, horizon, transition_dim), torch.zeros(2, dtype=torch.long))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on the module's shape checks, and the exporter's deprecation
        torch.onnx.export(copy.deepcopy(network).cpu().eval(), example, buffer, input_names=["x", "t"],
                          output_names=["y"],
                          dynamic_axes={"x": {0: "batch", 1: "horizon"}, "t": {0: "batch"},
                                        "y": {0: "batch", 1: "horizon"} if per_step_output else {0: "batch"}},
                          opset_version=ONNX_OPSET, dynamo=False)
    model = buffer.getvalue()
    if out is not None:
        Path(out).write_bytes(model)
    return model


def onnx_session(model: bytes | str | Path, threads: int | None = None, device=None):
    """An ONNX Runtime session on the best provider present for `device` (TensorRT, then CUDA, for a
    CUDA device; the CPU otherwise), with `threads` intra-op threads (None: ONNX Runtime's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    available = ort.get_available_providers()
    wanted = (["TensorrtExecutionProvider", "CUDAExecutionProvider"]
              if device is not None and torch.device(device).type == "cuda" else [])
    providers = [p for p in wanted if p in available] + ["CPUExecutionProvider"]
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=providers)


class InferenceNetwork(nn.Module):
    """The denoiser `network` called through `backend`: onnx (every call in ONNX Runtime), auto (ONNX
    Runtime up to AUTO_ONNX_MAX_BATCH, frozen TorchScript above) or torch (the module itself).
    Keeps the module's config and horizon check; inference only."""

    def __init__(self, network: nn.Module, transition_dim: int, horizon: int, backend: str = "auto",
                 threads: int | None = None, device=None):
        super().__init__()
        check_backend_name(backend)
        self.network, self.backend, self.transition_dim = network.eval(), backend, transition_dim
        on_gpu = device is not None and torch.device(device).type == "cuda"
        onnx = backend == "onnx" or (backend == "auto" and not on_gpu)  # auto on a GPU: torch's own kernels
        self.session = onnx_session(export_onnx(network, transition_dim, horizon), threads, device) if onnx else None
        self.scripted = frozen_torchscript(network, transition_dim, horizon) if backend == "auto" else None

    @property
    def config(self):
        return self.network.config

    def check_horizon(self, horizon: int) -> None:
        self.network.check_horizon(horizon)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[-1] != self.transition_dim:
            raise ValueError(f"expected (batch, horizon, {self.transition_dim}), got {tuple(x.shape)}")
        self.check_horizon(x.shape[1])
        if self.session is not None and (self.backend == "onnx" or x.shape[0] <= AUTO_ONNX_MAX_BATCH):
            output = self.session.run(None, {"x": x.detach().cpu().numpy().astype(np.float32, copy=False),
                                             "t": t.detach().cpu().numpy().astype(np.int64, copy=False)})[0]
            return torch.from_numpy(output).to(x.device)
        if self.scripted is not None:
            return self.scripted(x, t)
        return self.network(x, t)


def frozen_torchscript(network: nn.Module, transition_dim: int, horizon: int):
    """The network traced and frozen for inference (TorchScript): the same outputs, less Python per call."""
    device = next(network.parameters()).device
    example = (torch.zeros(2, horizon, transition_dim, device=device), torch.zeros(2, dtype=torch.long, device=device))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on the module's shape checks (checked before every call)
        traced = torch.jit.trace(network.eval(), example, check_trace=False)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


def accelerate(diffusion: nn.Module, horizon: int, backend: str, threads: int | None = None, device=None):
    """`diffusion` with its network called through `backend` (no change for "torch")."""
    check_backend_name(backend)
    if backend != "torch" and not isinstance(diffusion.network, InferenceNetwork):
        diffusion.network = InferenceNetwork(diffusion.network, diffusion.transition_dim, horizon, backend,
                                             threads, device)
    return diffusion
