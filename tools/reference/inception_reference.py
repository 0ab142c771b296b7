"""Our PyTorch reference of the FID Inception-v3 (the network pytorch-fid and most FID code compute pool3 features
with; docs/methods.md §9.4), written from torchvision's Inception3 and the FID patches that pytorch-fid describes:

- every conv is BasicConv2d: Conv2d(bias=False), BatchNorm2d(eps=0.001), ReLU;
- InceptionA, InceptionC and the first InceptionE average-pool their pool branch with count_include_pad=False
  (TensorFlow's average pool ignores the padding), the second InceptionE max-pools it (3x3, stride 1, padding 1);
- the input in [0, 1] is resized to 299x299 (bilinear, align_corners=False, no antialiasing) and mapped to [-1, 1];
- the features are the 2048 channels after Mixed_7c, averaged over the 8x8 grid.

Module names are torchvision's, so state_dict() has the keys of pytorch-fid's pt_inception-2015-12-05-6726825d.pth
(Conv2d_1a_3x3.conv.weight, Conv2d_1a_3x3.bn.running_var, ..., fc.weight [1008, 2048]).
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def avg_pool(x):
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):  # FIDInceptionA
    def __init__(self, cin, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(avg_pool(x))
        return torch.cat([a, b, c, d], 1)


class BlockB(nn.Module):  # torchvision InceptionB (Mixed_6a)
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([a, b, c], 1)


class BlockC(nn.Module):  # FIDInceptionC
    def __init__(self, cin, c7):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        for m in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            c = m(c)
        d = self.branch_pool(avg_pool(x))
        return torch.cat([a, b, c, d], 1)


class BlockD(nn.Module):  # torchvision InceptionD (Mixed_7a)
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_1(x)
        for m in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b = m(b)
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([a, b, c], 1)


class BlockE(nn.Module):  # FIDInceptionE_1 (max_pool=False) and FIDInceptionE_2 (max_pool=True)
    def __init__(self, cin, max_pool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], 1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], 1)
        p = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else avg_pool(x)
        d = self.branch_pool(p)
        return torch.cat([a, b, c, d], 1)


class FidInception(nn.Module):
    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = BlockA(192, 32)
        self.Mixed_5c = BlockA(256, 64)
        self.Mixed_5d = BlockA(288, 64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b = BlockC(768, 128)
        self.Mixed_6c = BlockC(768, 160)
        self.Mixed_6d = BlockC(768, 160)
        self.Mixed_6e = BlockC(768, 192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b = BlockE(1280, max_pool=False)
        self.Mixed_7c = BlockE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)   # the 1008 TensorFlow classes; FID never uses it

    def forward(self, images, stages=None):
        """images (N, 3, H, W) in [0, 1] -> pool3 features (N, 2048). `stages`, a dict, receives the input after
        resizing and mapping and the output of each of pytorch-fid's four blocks."""
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        if stages is not None:
            stages["input"] = x
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        if stages is not None:
            stages["block0"] = x
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), kernel_size=3, stride=2)
        if stages is not None:
            stages["block1"] = x
        for m in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                  self.Mixed_6d, self.Mixed_6e):
            x = m(x)
        if stages is not None:
            stages["block2"] = x
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        if stages is not None:
            stages["block3"] = x
        return x.mean(dim=(2, 3))


def hashed_weights(model):
    """Every tensor of `model.state_dict()` from vae_reference.hashed_uniform (u in [-1, 1)): conv weights
    u·√(6/fan_in), BatchNorm weight 1 + 0.25·u, bias 0.2·u, running_mean 0.1·u, running_var 1 + 0.5·u, fc weight
    u·√(3/2048) and bias 0.1·u; num_batches_tracked (if the torch version has it) left alone. Each value is computed
    in float64 and rounded once to float32, as InceptionWeights.HashedFile does."""
    from vae_reference import hashed_uniform
    sd = {}
    for k, p in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            sd[k] = p
            continue
        u = hashed_uniform(k, p.numel())
        last = k.split(".")[-1]
        if k.endswith("conv.weight"):
            v = u * np.sqrt(6.0 / (p.numel() // p.shape[0]))
        elif k == "fc.weight":
            v = u * np.sqrt(3.0 / 2048)
        elif k == "fc.bias":
            v = 0.1 * u
        elif last == "weight":
            v = 1.0 + 0.25 * u
        elif last == "bias":
            v = 0.2 * u
        elif last == "running_mean":
            v = 0.1 * u
        elif last == "running_var":
            v = 1.0 + 0.5 * u
        else:
            raise KeyError(k)
        sd[k] = torch.from_numpy(v.astype(np.float32)).reshape(p.shape)
    model.load_state_dict(sd)
    return sd
