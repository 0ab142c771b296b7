"""Train the Fashion-MNIST feature classifier that DitCache uses to score samples (accuracy of generated images
under their class label, and the Frechet distance between 128-d features of generated and real images).

    /usr/bin/python3 tools/train/train_classifier.py --out models/fmnist-classifier.safetensors

Architecture (mirrored exactly by src/DitCache.Evaluation/Metrics/FmnistClassifier.cs; the key names below are the
contract between the two):
    conv1  1->32, 3x3, pad 1, ReLU, maxpool 2      (N, 32, 14, 14)
    conv2 32->64, 3x3, pad 1, ReLU, maxpool 2      (N, 64, 7, 7)
    flatten (C, H, W) order                        (N, 3136)
    fc1   3136->128, ReLU   = the "features"        (N, 128)
    fc2   128->10           = the logits            (N, 10)
Inputs are in [-1, 1] (x / 127.5 - 1), the DiT's pixel range, so generated samples are fed as they come.

Choices: Adam lr 1e-3 with a cosine decay over the run, batch 128, one torch thread (the CPU is shared with the
DiT training), light augmentation (random shifts of up to 2 pixels, zero i.e. -1 padded). No horizontal flips:
Fashion-MNIST shoes all face one way. Training stops after --epochs or earlier once --min-epochs are done and the
test accuracy reaches --target; the export is the last epoch's weights (the test set is used only for that stop
rule and the number in the metadata, there is no model selection over many candidates).
"""
import argparse
import os
import shlex
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402
from st_io import save_safetensors  # noqa: E402


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):                                   # (N, 1, 28, 28) in [-1, 1]
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)          # (N, 32, 14, 14)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)          # (N, 64, 7, 7)
        features = F.relu(self.fc1(h.flatten(1)))          # (N, 128)
        return self.fc2(features), features                 # (N, 10), (N, 128)


def to_input(images_u8):
    return torch.from_numpy(images_u8.astype(np.float32) / 127.5 - 1.0).unsqueeze(1)  # (N, 1, 28, 28)


def shift(x, gen, max_shift=2):
    """Random integer translation per image, padding with -1 (the background)."""
    n = x.shape[0]
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    out = torch.empty_like(x)
    for i in range(n):
        out[i] = padded[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28]
    return out


@torch.no_grad()
def accuracy(model, x, y, batch=1000):
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch):
        logits, _ = model(x[i:i + batch])
        correct += (logits.argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return correct / x.shape[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="models/fmnist-classifier.safetensors")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--min-epochs", type=int, default=4)
    p.add_argument("--target", type=float, default=0.915)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--augment", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    xtr_u8, ytr_u8 = fmnist.load("train")
    xte_u8, yte_u8 = fmnist.load("test")
    xtr, ytr = to_input(xtr_u8), torch.from_numpy(ytr_u8.astype(np.int64))
    xte, yte = to_input(xte_u8), torch.from_numpy(yte_u8.astype(np.int64))

    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = (xtr.shape[0] + args.batch - 1) // args.batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * steps_per_epoch)
    acc, epoch = 0.0, 0
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        total = 0.0
        for i in range(0, xtr.shape[0], args.batch):
            idx = perm[i:i + args.batch]
            xb = xtr[idx]
            if args.augment:
                xb = shift(xb, gen)
            logits, _ = model(xb)
            loss = F.cross_entropy(logits, ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * idx.shape[0]
        acc = accuracy(model, xte, yte)
        print(f"epoch {epoch}: train loss {total / xtr.shape[0]:.4f}, test accuracy {acc:.4f} "
              f"({time.time() - t0:.0f}s)", flush=True)
        if epoch >= args.min_epochs and acc >= args.target:
            break

    command = "/usr/bin/python3 " + " ".join(shlex.quote(a) for a in sys.argv)
    tensors = {k: v.float() for k, v in model.state_dict().items()}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_safetensors(args.out, tensors, {
        "format": "pt", "architecture": "fmnist-cnn-v1 (conv32-conv64-fc128-fc10, inputs in [-1,1])",
        "test_accuracy": f"{acc:.4f}", "epochs": str(epoch), "command": command, "seed": str(args.seed)})
    print(f"test accuracy {acc:.4f} after {epoch} epochs; wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
