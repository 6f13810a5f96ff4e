"""The inference runtimes a policy can run with (torch-free: the policy node declares its parameter from it).
Every runtime computes what eager fp32 computes, up to its numerics (``runtime_check`` measures it):

  eager       the model as loaded
  int8        torch dynamic int8 quantisation of every Linear layer, in place (CPU)
  compile     torch.compile (inductor) of both per-tick calls (the prediction once per history length)
  onnx        ONNX graphs exported by robovlms-export (the per-frame encoder and the head over the window of
              cached features), run with onnxruntime; policy_head only
  bf16        bfloat16 weights and activations (CUDA)
  cuda_graph  torch.compile with CUDA-graph capture (mode reduce-overhead; CUDA)
"""
from __future__ import annotations

RUNTIMES = ("eager", "int8", "compile", "onnx", "bf16", "cuda_graph")
CUDA_ONLY = ("bf16", "cuda_graph")


class RuntimeUnsupported(ValueError):
    """The runtime cannot run this checkpoint on this device; the message says why and what can."""
