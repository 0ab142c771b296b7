"""Writes the checkpoint-IO fixtures in tests/TestData/io/ (see the README there). Deterministic: fixed seeds.

Run with Debian's PyTorch:  /usr/bin/python3 tools/reference/make_io_fixtures.py

Every tensor a .pt fixture holds also appears, as a contiguous float32 copy, in torch_golden.safetensors under
"<fixture>/<name>", so the C# tests compare our reader against PyTorch's own view of the same file.
"""
import argparse
import collections
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "train"))
from st_io import save_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "TestData", "io")
golden = {}


def save_pt(name, obj, state_dict=None, **kwargs):
    torch.save(obj, os.path.join(OUT, name + ".pt"), **kwargs)
    for key, t in (state_dict or {}).items():
        golden[f"{name}/{key}"] = t.float().contiguous().clone()


def plain_state_dict(seed):
    """A Linear's state_dict (an OrderedDict with `_metadata`, as Module.state_dict() returns) plus views."""
    torch.manual_seed(seed)
    sd = torch.nn.Linear(4, 3).state_dict()
    base = torch.randn(10)
    grid = torch.randn(2, 3, 4)
    sd["proj.weight_t"] = sd["weight"].t()           # non-contiguous, shares weight's storage
    sd["shared.head"] = base[:4]                      # storage_offset 0 of a 10-element storage
    sd["shared.tail"] = base[6:]                      # storage_offset 6 of the same storage
    sd["grid.permuted"] = grid.permute(2, 0, 1)       # strides (1, 12, 4)
    sd["grid.strided"] = grid[:, ::2, 1:]             # stride 2 on dim 1, offset 1
    sd["scalar"] = torch.tensor(3.25)                 # rank 0
    sd["empty"] = torch.zeros(0, 3)                   # no elements
    return sd


def main():
    os.makedirs(OUT, exist_ok=True)

    # float32 state_dict with views (torch.save keeps views: one storage, several offsets/strides).
    sd = plain_state_dict(0)
    save_pt("plain_f32", sd, sd)

    # float16 / bfloat16 with special values: ±0, ±inf, NaN, subnormals, the largest finite value.
    special = torch.tensor([0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan"), 1e-7, 6e-8, 65504.0,
                            3.140625, -1e-3])
    torch.manual_seed(1)
    for dtype, name in ((torch.float16, "f16"), (torch.bfloat16, "bf16")):
        w = torch.randn(3, 5).to(dtype)
        sd = collections.OrderedDict(special=special.to(dtype), w=w, w_t=w.t())
        save_pt(name, sd, sd)
        save_safetensors(os.path.join(OUT, name + ".safetensors"),
                         {"special": special.to(dtype), "w": w.contiguous()}, {"dtype": name})
        golden[f"{name}.safetensors/special"] = special.to(dtype).float()
        golden[f"{name}.safetensors/w"] = w.float()

    # DiT train.py style: {"model", "ema", "opt", "args"}; the loader must pick "ema".
    torch.manual_seed(2)
    model = torch.nn.Linear(3, 2)
    ema = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)
    model(torch.randn(4, 3)).pow(2).sum().backward()
    opt.step()
    args = argparse.Namespace(model="DiT-XL/2", image_size=256, global_seed=0)
    ckpt = {"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "args": args}
    save_pt("nested_train", ckpt, ema.state_dict())

    # Only "model" present: that one is picked.
    save_pt("nested_model", {"model": model.state_dict(), "epoch": 7}, model.state_dict())

    # An int64 tensor inside the state_dict (BatchNorm's counter): refused, naming the key.
    torch.manual_seed(3)
    save_pt("int64", torch.nn.BatchNorm1d(2).state_dict())

    # A pickle that would run os.system on load (torch.load with weights_only=False): refused.
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    save_pt("forbidden_global", {"w": torch.zeros(2), "payload": Evil()})

    # A whole nn.Module (torch.save(model)): its class is a global outside the allowlist.
    torch.save(torch.nn.Linear(2, 2), os.path.join(OUT, "whole_module.pt"))

    # Legacy (pre-1.6) format: not a zip.
    torch.save({"w": torch.zeros(2)}, os.path.join(OUT, "legacy.pt"), _use_new_zipfile_serialization=False)

    save_safetensors(os.path.join(OUT, "torch_golden.safetensors"), golden, {"generator": "make_io_fixtures.py"})
    total = 0
    for f in sorted(os.listdir(OUT)):
        size = os.path.getsize(os.path.join(OUT, f))
        total += size
        print(f"{size:8d}  {f}")
    print(f"{total:8d}  total")


if __name__ == "__main__":
    main()
