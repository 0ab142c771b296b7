"""Train the class-conditional DiT that DitCache ships as its default model, on Fashion-MNIST.

    /usr/bin/python3 tools/train/train_dit.py --out tools/train/out/dit --steps 6000
    /usr/bin/python3 tools/train/train_dit.py --out tools/train/out/dit --export models/fmnist-dit.safetensors

Resumable: the run state (model, EMA, AdamW, RNG, step) is written atomically to OUT/ckpt.pt every
--ckpt-every steps and the run continues from it when restarted with the same --out. The loss log is
OUT/loss.csv. Written for Debian's PyTorch 1.13 and newer PyTorch (the GPU machine).

Choices (see models/README.md):
* architecture and loss exactly DiT's: adaLN-Zero blocks, learn_sigma with the hybrid loss (eps MSE plus the
  variational bound for the variance), class dropout 0.1 so classifier-free guidance works;
* AdamW with weight decay 0 and gradient clipping at 1.0. DiT trains at lr 1e-4 for 400k+ steps; with a budget of
  a few thousand CPU steps we use lr 5e-4 after a 200-step linear warm-up (a higher rate converges faster on this
  small model; the loss log shows no instability);
* EMA with decay 0.9999 as DiT, with the usual warm-up min(0.9999, (1+s)/(10+s)): with plain 0.9999 the exported
  weights after 5k steps would still be 60% the random initialisation.
"""
import argparse
import csv
import json
import os
import shlex
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402
from dit_model import DiT, Diffusion  # noqa: E402
from st_io import save_safetensors  # noqa: E402


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--depth", type=int, default=12)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--patch", type=int, default=4)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ema", type=float, default=0.9999)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--export", default=None, help="write the EMA weights to this safetensors file and exit")
    p.add_argument("--export-dtype", default="fp32", choices=["fp32", "fp16"])
    return p.parse_args()


def build(args):
    return DiT(input_size=28, patch_size=args.patch, in_channels=1, hidden_size=args.hidden, depth=args.depth,
               num_heads=args.heads, class_dropout_prob=0.1, num_classes=10, learn_sigma=True)


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main():
    args = parse()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, "ckpt.pt")
    cfg_path = os.path.join(args.out, "config.json")

    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            cfg = json.load(f)
        for k in ("hidden", "depth", "heads", "patch"):
            setattr(args, k, cfg[k])
    else:
        cfg = {k: getattr(args, k) for k in ("hidden", "depth", "heads", "patch", "batch", "lr", "warmup", "ema", "seed")}
        cfg["argv"] = sys.argv
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)

    torch.manual_seed(args.seed)
    model = build(args).to(args.device)
    ema = build(args).to(args.device)
    ema.load_state_dict(model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
    step, last_loss = 0, float("nan")
    gen = torch.Generator().manual_seed(args.seed)
    if os.path.exists(ckpt_path):
        state = torch.load(ckpt_path, map_location=args.device)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, last_loss = state["step"], state.get("loss", float("nan"))
        gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed at step {step}", flush=True)

    if args.export:
        meta = {
            "num_heads": args.heads, "image_size": 28, "in_channels": 1, "num_classes": 10,
            "dataset": "Fashion-MNIST (Debian dataset-fashion-mnist, MIT)", "training_steps": step,
            "final_loss": f"{last_loss:.5f}", "batch_size": args.batch, "lr": args.lr, "ema_decay": args.ema,
            "command": " ".join(shlex.quote(a) for a in ["/usr/bin/python3"] + cfg.get("argv", ["tools/train/train_dit.py",
                                                                                          "--out", args.out])) +
                       f" (stopped after step {step}) && " +
                       " ".join(shlex.quote(a) for a in ["/usr/bin/python3"] + sys.argv),
        }
        sd = {k: v.float() for k, v in ema.state_dict().items()}
        if args.export_dtype == "fp16":
            sd = {k: v.half() for k, v in sd.items()}
        save_safetensors(args.export, sd, meta)
        print(f"wrote {args.export} (step {step}, loss {last_loss:.5f})")
        return

    images, labels = fmnist.load("train")
    data = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).unsqueeze(1)   # (60000, 1, 28, 28)
    targets = torch.from_numpy(labels.astype(np.int64))
    diffusion = Diffusion()
    log_path = os.path.join(args.out, "loss.csv")
    new_log = not os.path.exists(log_path)
    log = open(log_path, "a", newline="")
    writer = csv.writer(log)
    if new_log:
        writer.writerow(["step", "loss", "mse", "vb", "lr", "seconds_per_step"])

    model.train()
    window, t0 = [], time.time()
    while step < args.steps:
        idx = torch.randint(0, data.shape[0], (args.batch,), generator=gen)
        x0, y = data[idx].to(args.device), targets[idx].to(args.device)
        t = torch.randint(0, diffusion.num_timesteps, (args.batch,), generator=gen).to(args.device)
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        mse, vb = diffusion.training_losses(model, x0, t, y)
        loss = (mse + vb).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
        window.append((loss.item(), mse.mean().item(), vb.mean().item()))
        if step % 20 == 0:
            dt = (time.time() - t0) / len(window)
            l, m, v = (float(np.mean([w[i] for w in window])) for i in range(3))
            last_loss = l
            writer.writerow([step, f"{l:.5f}", f"{m:.5f}", f"{v:.5f}", f"{lr:.2e}", f"{dt:.3f}"])
            log.flush()
            print(f"step {step} loss {l:.4f} mse {m:.4f} vb {v:.4f} {dt:.2f}s/step", flush=True)
            window, t0 = [], time.time()
        if step % args.ckpt_every == 0 or step == args.steps:
            save_atomic({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                         "step": step, "loss": last_loss, "gen": gen.get_state(),
                         "torch_rng": torch.get_rng_state()}, ckpt_path)
    log.close()


if __name__ == "__main__":
    main()
