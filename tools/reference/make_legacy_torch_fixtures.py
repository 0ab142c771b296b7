"""Writes the legacy-format torch.save fixtures in tests/TestData/io/ (see tests/TestData/README.md).

Run with Debian's PyTorch 1.13:  /usr/bin/python3 tools/reference/make_legacy_torch_fixtures.py

The legacy format is what torch.save wrote before PyTorch 1.6 and still writes with
_use_new_zipfile_serialization=False (torch/serialization.py _legacy_save). Every tensor of every fixture also
appears, as PyTorch's own float32 contiguous copy of what torch.load returns for that file, in
legacy_golden.safetensors under "<fixture>/<name>"; the C# tests compare our reader with it bit for bit, and the
legacy and zip copies of the same state_dict with each other.

Storage keys in the legacy format are Python object addresses, so those files differ between runs; the values do
not (fixed seeds).
"""
import collections
import os
import pickle
import struct
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "train"))
from st_io import save_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "TestData", "io")
golden = {}


def state_dict():
    """float32/float16/bfloat16 tensors, a transpose, two tensors sharing a storage, a 0-d and an empty tensor."""
    torch.manual_seed(15)
    sd = collections.OrderedDict()
    sd["fc.weight"] = torch.randn(3, 4)
    sd["fc.weight_t"] = sd["fc.weight"].t()                  # non-contiguous view of fc.weight's storage
    base = torch.randn(10)
    sd["shared.head"] = base[:3]                             # storage offset 0
    sd["shared.tail"] = base[5:9]                            # storage offset 5 of the same storage
    sd["half"] = torch.tensor([0.0, -0.0, 1.0, -2.5, float("inf"), float("nan"), 6e-8, 65504.0]).half()
    h2 = torch.randn(2, 3).half()
    sd["half_t"] = h2.t()
    sd["bf16"] = torch.randn(2, 5).bfloat16()
    sd["bf16_strided"] = sd["bf16"][:, ::2]                  # stride 2, shares bf16's storage
    sd["scalar"] = torch.tensor(-1.75)                       # rank 0
    sd["empty"] = torch.zeros(0, 4)                          # no elements
    return sd


def record(fixture, path, under=None):
    """PyTorch's own view of the file it wrote: what torch.load returns."""
    loaded = torch.load(path)
    if under is not None:
        loaded = loaded[under]
    for key, t in loaded.items():
        golden[f"{fixture}/{key}"] = t.float().contiguous().clone()


def save(fixture, obj, under=None, **kwargs):
    path = os.path.join(OUT, fixture + ".pt")
    torch.save(obj, path, **kwargs)
    record(fixture, path, under)


class _Storage:
    """A storage persistent id as _legacy_save wrote it before torch 1.0, when storages could be views."""

    def __init__(self, key, numel, view):
        self.key, self.numel, self.view = key, numel, view


class _Tensor:
    """Pickles as torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


def write_views_fixture(path):
    """A legacy file whose persistent ids carry view_metadata (view_key, offset, size), as torch < 1.0 wrote them.

    torch 1.13 no longer writes views, but _legacy_load still reads them; this writes the layout by hand with
    pickle (protocol 2, torch.save's default) and torch.load is the reference for what it means.
    """
    root = (torch.arange(12, dtype=torch.float32) * 0.5 - 1.0)
    a = _Storage("root", 12, ("view_a", 2, 6))               # elements [2, 8)
    b = _Storage("root", 12, ("view_b", 5, 7))               # elements [5, 12)
    whole = _Storage("root", 12, None)
    obj = collections.OrderedDict()
    obj["in_view_a"] = _Tensor(a, 1, [2, 2], [2, 1])          # view elements 1, 2, 3, 4 -> root 3..6
    obj["in_view_b"] = _Tensor(b, 0, [7], [1])                # the whole view -> root 5..11
    obj["in_view_b_t"] = _Tensor(b, 1, [3, 2], [1, 3])        # strided inside view b
    obj["whole"] = _Tensor(whole, 0, [3, 4], [4, 1])

    def persistent_id(o):
        if isinstance(o, _Storage):
            return ("storage", torch.FloatStorage, o.key, "cpu", o.numel, o.view)
        return None

    with open(path, "wb") as f:
        pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": sys.byteorder == "little",
                     "type_sizes": {"short": 2, "int": 4, "long": 8}}, f, protocol=2)
        pickler = pickle.Pickler(f, protocol=2)
        pickler.persistent_id = persistent_id
        pickler.dump(obj)
        pickle.dump(["root"], f, protocol=2)
        f.write(struct.pack("<q", 12))
        f.write(root.numpy().astype("<f4").tobytes())


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = state_dict()

    # The same state_dict in both formats; the legacy one with pickle protocol 2 (torch.save's default) and 4
    # (FRAME opcodes).
    save("legacy_sd", sd, _use_new_zipfile_serialization=False)
    save("legacy_sd_zip", sd)
    save("legacy_sd_proto4", sd, pickle_protocol=4, _use_new_zipfile_serialization=False)

    # A {"state_dict": ...} wrapper (Lightning checkpoints), legacy format.
    save("legacy_wrapped", {"state_dict": sd, "global_step": 3}, under="state_dict", _use_new_zipfile_serialization=False)

    # One storage, so the C# corruption tests know where its element count lies (8 + 4·5 bytes before the end).
    save("legacy_one", {"w": torch.arange(5, dtype=torch.float32) + 0.25}, _use_new_zipfile_serialization=False)

    # BatchNorm2d after a training step (non-trivial running stats): its int64 0-d num_batches_tracked (a
    # torch.LongStorage of 8-byte elements the legacy reader must step over) is left out of the entries.
    torch.manual_seed(16)
    bn = torch.nn.BatchNorm2d(3)
    bn(torch.randn(4, 3, 2, 2) * 2 + 1)
    with torch.no_grad():
        bn.weight.mul_(1.5)
        bn.bias.add_(0.25)
    bn_sd = bn.state_dict()
    floats = {k: v for k, v in bn_sd.items() if v.is_floating_point()}
    for fixture, kwargs in (("legacy_bn", {"_use_new_zipfile_serialization": False}), ("legacy_bn_zip", {})):
        torch.save(bn_sd, os.path.join(OUT, fixture + ".pt"), **kwargs)
        for k, v in floats.items():
            golden[f"{fixture}/{k}"] = torch.load(os.path.join(OUT, fixture + ".pt"))[k].float().contiguous().clone()

    # Refused: an int64 tensor that is not a 0-d BatchNorm counter ('index'; the counter before it is skipped),
    # and a counter of shape [1].
    bad = collections.OrderedDict(w=torch.randn(2), **{"bn.num_batches_tracked": torch.tensor(4)}, index=torch.arange(3))
    torch.save(bad, os.path.join(OUT, "legacy_int64.pt"), _use_new_zipfile_serialization=False)
    torch.save(bad, os.path.join(OUT, "legacy_int64_zip.pt"))
    torch.save({"bn.num_batches_tracked": torch.tensor([4])}, os.path.join(OUT, "legacy_counter_1d.pt"),
               _use_new_zipfile_serialization=False)

    # Storage views (view_metadata), written by hand as torch < 1.0 did.
    path = os.path.join(OUT, "legacy_views.pt")
    write_views_fixture(path)
    record("legacy_views", path)

    save_safetensors(os.path.join(OUT, "legacy_golden.safetensors"), golden, {"generator": "make_legacy_torch_fixtures.py"})
    total = 0
    for f in sorted(os.listdir(OUT)):
        if f.startswith("legacy_"):
            size = os.path.getsize(os.path.join(OUT, f))
            total += size
            print(f"{size:8d}  {f}")
    print(f"{total:8d}  total")


if __name__ == "__main__":
    main()
