"""Exports a DiT safetensors file (the one DitCache loads) for the peers of tools/bench/side_by_side.py --peers:
ONNX for ONNX Runtime (torch.onnx.export) and TorchScript for TorchSharp (torch.jit.trace), both from our PyTorch
DiT (tools/train/dit_model.py) with the same weights, at a fixed batch.

    /usr/bin/python3 tools/bench/export_peers.py --weights models/fmnist-dit.safetensors --batch 20 \
        --onnx /tmp/fmnist_b20.onnx --torchscript /tmp/fmnist_b20.pt

Inputs of both exports: x float32 (B, C, H, W), t float32 (B) (the DDPM timestep), y int64 (B) (the class, the null
class for the unconditional half of a CFG batch); output "out" float32 (B, out, H, W). Beside each export a JSON file
(same name + ".json") tells the peer server the shapes and the null class. Models over 2 GB (DiT-XL/2) are written as
ONNX with external data (the tensors in files beside the .onnx, as torch.onnx.export does past protobuf's limit).
"""
import argparse
import copy
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from side_by_side import load_dit  # noqa: E402

OPSET = 17  # PyTorch 1.13's newest: LayerNormalization is one ONNX op from 17 on


class Forward(torch.nn.Module):
    """The plain forward (no CFG, no training-time label dropout) with the three inputs the peers feed."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, t, y):
        return self.model(x, t, y)


def affine_layer_norms(model):
    """DiT's LayerNorms have no affine parameters, and PyTorch 1.13 exports such a LayerNorm as an ONNX
    LayerNormalization without its (required) scale input, which the checker rejects. Scale 1 and bias 0 give the
    same values exactly (x*1 + 0), and ORT still sees one fused LayerNormalization."""
    for m in model.modules():
        if isinstance(m, torch.nn.LayerNorm) and not m.elementwise_affine:
            m.weight = torch.nn.Parameter(torch.ones(m.normalized_shape), requires_grad=False)
            m.bias = torch.nn.Parameter(torch.zeros(m.normalized_shape), requires_grad=False)
            m.elementwise_affine = True
    return model


def example_inputs(model, batch):
    g = torch.Generator().manual_seed(7)
    size = model.pos_embed.shape[1] ** 0.5 * model.patch
    x = torch.randn(batch, model.in_channels, int(size), int(size), generator=g)
    t = torch.linspace(999.0, 0.0, batch)
    y = torch.arange(batch, dtype=torch.long) % (model.y_embedder.num_classes + 1)
    return x, t, y


def sidecar(path, model, batch, weights, kind):
    size = int(round(model.pos_embed.shape[1] ** 0.5)) * model.patch
    meta = {"kind": kind, "batch": batch, "in_channels": model.in_channels, "out_channels": model.out_channels,
            "input_size": size, "null_class": model.y_embedder.num_classes, "weights": os.path.abspath(weights),
            "torch": torch.__version__, "script": "tools/bench/export_peers.py"}
    with open(path + ".json", "w") as f:
        json.dump(meta, f, indent=1)


def export(weights, batch, onnx_path=None, ts_path=None):
    """Writes the requested exports; returns the largest relative L2 between each export run in PyTorch and the
    eager model on random inputs (a traced graph that froze a shape or a branch wrongly shows here)."""
    model = Forward(load_dit(weights)).eval()
    inputs = example_inputs(model.model, batch)
    worst = 0.0
    with torch.no_grad():
        reference = model(*inputs)
        if onnx_path:
            torch.onnx.export(affine_layer_norms(copy.deepcopy(model)), inputs, onnx_path, input_names=["x", "t", "y"], output_names=["out"],
                              opset_version=OPSET, do_constant_folding=True)
            sidecar(onnx_path, model.model, batch, weights, "onnx")
        if ts_path:
            traced = torch.jit.freeze(torch.jit.trace(model, inputs))
            worst = max(worst, float((traced(*inputs) - reference).norm() / reference.norm()))
            traced.save(ts_path)
            sidecar(ts_path, model.model, batch, weights, "torchscript")
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="DiT safetensors file (as DitCache loads it)")
    ap.add_argument("--batch", type=int, required=True, help="fixed batch of the exports (CFG: twice the images)")
    ap.add_argument("--onnx", help="ONNX file to write")
    ap.add_argument("--torchscript", help="TorchScript file to write")
    a = ap.parse_args()
    if not (a.onnx or a.torchscript):
        sys.exit("export_peers.py: give --onnx PATH and/or --torchscript PATH (nothing to write)")
    if a.batch < 1:
        sys.exit(f"export_peers.py: --batch {a.batch} must be at least 1")
    if not os.path.isfile(a.weights):
        sys.exit(f"export_peers.py: --weights {a.weights}: no such file (a DiT safetensors file)")
    torch.set_num_threads(1)
    err = export(a.weights, a.batch, a.onnx, a.torchscript)
    print(f"exported {a.weights} at batch {a.batch}: {a.onnx or ''} {a.torchscript or ''} "
          f"(TorchScript vs eager rel L2 {err:.1e})")
    if not err < 1e-6:
        sys.exit(f"export_peers.py: the traced TorchScript differs from the eager model by {err:.2e} relative L2")


if __name__ == "__main__":
    main()
