"""bench/voc_seg_peer.py - the PyTorch peer of specs/voc_seg.dldl
(bench/voc_seg.sh runs it; PyTorch is used here only, never by dldl).

The same task trained the same way on the same folds: the 289 segmented
images of VOC2012 ImageSets/Segmentation/subset.txt, five folds cut as dldl's
kfold(5, seed = 0) (numpy's legacy RandomState(0).permutation,
np.array_split); images resized to 64 x 64 with PIL's BILINEAR and scaled to
[-1, 1], label maps (palette indices, 255 void) by nearest neighbour; per
sample a random flip, a zoom about the centre by s in [0.75, 1.25] and a shift
by up to 8 pixels, one map for the image (bilinear, black outside) and its
label map (nearest, void outside), as runtime/augment.c; the label_map target
(per pixel a Gaussian-weighted vote of the neighbouring pixels' classes,
sigma pixels, void pixels voting for nothing and getting no row); the same
FCN-8s-like network; KL divergence per pixel averaged over the pixels that
are not void; SGD momentum 0.9, weight decay 5e-4, one-cycle to lr 0.05,
batch 16 (the last partial batch dropped), 2 threads.  Scores on each test
fold: one confusion matrix over its pixels (void excluded), mIoU over the
classes present in the truth or the prediction, pixel accuracy; and the
trivial predictor's (every pixel background).

Usage: python3 bench/voc_seg_peer.py DATA_ROOT EPOCHS SIGMA [FOLDS]
Prints one line per fold, "fold F miou M pixacc A trivial_miou T trivial_pixacc U secs S".
"""
import math, sys, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
from PIL import Image

S, PAD, B, K = 64, 8, 16, 21
root, epochs, sigma = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
folds = [int(f) for f in sys.argv[4].split(",")] if len(sys.argv) > 4 else list(range(5))
torch.set_num_threads(2)
kit = f"{root}/voc2012/VOC2012"
ids = [l.strip() for l in open(f"{kit}/ImageSets/Segmentation/subset.txt") if l.strip()]


def load_mask(i):
    m = np.asarray(Image.open(f"{kit}/SegmentationClass/{i}.png"))
    h, w = m.shape
    ys = ((2 * np.arange(S) + 1) * h) // (2 * S)   # floor((y + 0.5) h / S), as sources_voc.c
    xs = ((2 * np.arange(S) + 1) * w) // (2 * S)
    return m[ys][:, xs].astype(np.int64)


X = np.stack([np.asarray(Image.open(f"{kit}/JPEGImages/{i}.jpg").convert("RGB").resize((S, S), Image.BILINEAR),
                         np.float32).transpose(2, 0, 1) / 127.5 - 1.0 for i in ids])
M = np.stack([load_mask(i) for i in ids])
parts = np.array_split(np.random.RandomState(0).permutation(len(ids)), 5)


def gauss_kernel(s):
    r = min(int(math.ceil(3 * s)), S)
    g = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float64) ** 2 / (2 * s * s))
    return g, r


def targets(m):
    """m [B,S,S] int64 (255 void) -> y [B,K,S,S] float32: the label_map target."""
    valid = (m < K)
    oh = F.one_hot(torch.where(valid, m, torch.zeros_like(m)), K).permute(0, 3, 1, 2).double() * valid[:, None]
    if sigma <= 0:
        return oh.float()
    g, r = gauss_kernel(sigma)
    def blur(t):  # separable, zero padding = the window clipped to the map
        c = t.shape[1]
        t = F.conv2d(t, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, r), groups=c)
        return F.conv2d(t, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(r, 0), groups=c)
    num, den = blur(oh), blur(valid[:, None].double())
    return (num / den.clamp_min(1e-300) * valid[:, None]).float()


def augment(x, m, rng):
    """A per-sample flip, zoom and shift, one grid for image and label map."""
    n = len(x)
    grid = torch.empty(n, S, S, 2)
    o = torch.arange(S, dtype=torch.float32)
    for j in range(n):   # the draws in dldl's order of purposes: flip, row shift, column shift, zoom
        flip = rng.rand() < 0.5
        dy, dx = rng.randint(-PAD, PAD + 1, 2)
        s = 0.75 + 0.5 * rng.rand()
        sy = (o + 0.5 - S / 2) / s + S / 2 - 0.5 + dy
        ox = (S - 1 - o) if flip else o
        sx = (ox + 0.5 - S / 2) / s + S / 2 - 0.5 + dx
        grid[j, :, :, 1] = ((2 * sy + 1) / S - 1)[:, None]   # align_corners=False coordinates
        grid[j, :, :, 0] = ((2 * sx + 1) / S - 1)[None, :]
    img = F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
    mm = F.grid_sample(m[:, None].float() + 1, grid, mode="nearest", padding_mode="zeros", align_corners=False)[:, 0]
    mm = torch.where(mm == 0, torch.full_like(mm, 256), mm) - 1
    return img, mm.long()


def cbr(ci, co): return nn.Sequential(nn.Conv2d(ci, co, 3, padding=1, bias=False), nn.BatchNorm2d(co), nn.ReLU(inplace=True))


class FCN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = cbr(3, 24), cbr(24, 48)
        self.c3, self.c3b = cbr(48, 64), cbr(64, 64)
        self.c4, self.c4b = cbr(64, 96), cbr(96, 96)
        self.c5, self.c5b = cbr(96, 128), cbr(128, 128)
        self.s5, self.s4, self.s3 = nn.Conv2d(128, K, 1), nn.Conv2d(96, K, 1), nn.Conv2d(64, K, 1)

    def forward(self, x):
        up = lambda t, f: F.interpolate(t, scale_factor=f, mode="bilinear", align_corners=False)
        c1 = self.c1(x)
        c2 = self.c2(F.max_pool2d(c1, 2))
        c3 = self.c3b(self.c3(F.max_pool2d(c2, 2)))
        c4 = self.c4b(self.c4(F.max_pool2d(c3, 2)))
        c5 = self.c5b(self.c5(F.max_pool2d(c4, 2)))
        s4 = up(self.s5(c5), 2) + self.s4(c4)
        s3 = up(s4, 2) + self.s3(c3)
        return up(s3, 4)


def scores(pred, truth):
    keep = truth < K
    conf = np.bincount(truth[keep] * K + pred[keep], minlength=K * K).reshape(K, K).astype(np.float64)
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    iou = tp[union > 0] / union[union > 0]
    return iou.mean(), tp.sum() / conf.sum()


for f in folds:
    torch.manual_seed(0)
    rng = np.random.RandomState(f)
    te = parts[f]
    tr = np.concatenate([parts[k] for k in range(5) if k != f])
    Xtr, Mtr = torch.from_numpy(X[tr]), torch.from_numpy(M[tr])
    net = FCN()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    nb = len(tr) // B
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.05, total_steps=epochs * nb)
    t0 = time.time()
    for ep in range(epochs):
        net.train()
        order = rng.permutation(len(tr))
        for b in range(nb):
            idx = order[b * B:(b + 1) * B]
            x, m = augment(Xtr[idx], Mtr[idx], rng)
            y = targets(m)
            logq = F.log_softmax(net(x), 1)
            kl = (torch.xlogy(y, y) - y * logq).sum(1)          # per pixel; void rows are 0
            loss = kl.sum() / (m < K).sum().clamp_min(1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        pred = net(torch.from_numpy(X[te])).argmax(1).numpy()
    mi, pa = scores(pred.ravel(), M[te].ravel())
    tmi, tpa = scores(np.zeros(M[te].size, np.int64), M[te].ravel())
    print(f"fold {f + 1} miou {100 * mi:.2f} pixacc {100 * pa:.2f} trivial_miou {100 * tmi:.2f} "
          f"trivial_pixacc {100 * tpa:.2f} secs {time.time() - t0:.0f}", flush=True)
