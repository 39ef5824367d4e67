"""bench/voc_multilabel_peer.py - the PyTorch peer of specs/voc_multilabel.dldl
(bench/voc_multilabel.sh runs it; PyTorch is used here only, never by dldl).

The same task trained the same way on the same folds: the 527 images of
VOC2012 ImageSets/Main/multilabel.txt, five folds cut as dldl's kfold(5, seed
= 0) (numpy's legacy RandomState(0).permutation, np.array_split); images
resized to 96 x 96 with PIL's BILINEAR and scaled to [-1, 1]; random flips and
random crops of the image padded by 8 black pixels; the multilabel target
(1 per class present, `difficult` per class present only as difficult
objects, normalised; classes from the XML annotations); the same network
(3x3 conv + BN + ReLU stack, global average pooling, dropout 0.3, linear 20,
softmax), KL divergence (batchmean), SGD momentum 0.9, weight decay 5e-4,
one-cycle to lr 0.05, batch 32 (the last partial batch dropped), 2 threads.
Scores: the VOC2010+ AP of each class (VOCap.m, tied scores one threshold),
averaged over the classes with a positive, on each test fold.  Also prints
the trivial predictor's mAP (each class scored by its frequency in the
training folds: every test image tied).

Usage: python3 bench/voc_multilabel_peer.py DATA_ROOT EPOCHS DIFFICULT [FOLDS]
Prints one line per fold, "fold F map M trivial T secs S".
"""
import sys, time, math, xml.etree.ElementTree as ET
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
from PIL import Image

CLASSES = ("aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse motorbike person "
           "pottedplant sheep sofa train tvmonitor").split()
S, PAD, B = 96, 8, 32
root, epochs, difficult = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
folds = [int(f) for f in sys.argv[4].split(",")] if len(sys.argv) > 4 else list(range(5))
torch.set_num_threads(2)
kit = f"{root}/voc2012/VOC2012"
ids = [l.strip() for l in open(f"{kit}/ImageSets/Main/multilabel.txt") if l.strip()]


def presence(i):
    p = np.full(20, -1, np.int8)
    for o in ET.parse(f"{kit}/Annotations/{i}.xml").getroot().findall("object"):
        c = CLASSES.index(o.find("name").text.strip())
        d = o.find("difficult")
        hard = d is not None and d.text.strip() == "1"
        p[c] = max(p[c], 0 if hard else 1)
    return p


X = np.stack([np.asarray(Image.open(f"{kit}/JPEGImages/{i}.jpg").convert("RGB").resize((S, S), Image.BILINEAR),
                         np.float32).transpose(2, 0, 1) / 127.5 - 1.0 for i in ids])
P = np.stack([presence(i) for i in ids])
Y = np.where(P > 0, 1.0, np.where(P == 0, difficult, 0.0)).astype(np.float32)
Y /= Y.sum(1, keepdims=True)
parts = np.array_split(np.random.RandomState(0).permutation(len(ids)), 5)


def voc_ap(s, g):
    """VOCap.m on the PR points of tied-score thresholds; g: 1 / 0 (ignored) / -1."""
    keep = g != 0
    s, g = s[keep], g[keep] > 0
    if g.sum() == 0:
        return float("nan")
    u = np.unique(s)[::-1]
    tp = np.array([(g & (s >= t)).sum() for t in u], float)
    fp = np.array([(~g & (s >= t)).sum() for t in u], float)
    rec, prec = tp / g.sum(), tp / (tp + fp)
    mrec, mpre = np.concatenate([[0], rec, [1]]), np.concatenate([[0], prec, [0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.where(mrec[1:] != mrec[:-1])[0] + 1
    return float(((mrec[i] - mrec[i - 1]) * mpre[i]).sum())


def mean_ap(scores, truth):
    aps = [voc_ap(scores[:, c], truth[:, c]) for c in range(truth.shape[1])]
    return float(np.nanmean(aps))


def cbr(ci, co): return [nn.Conv2d(ci, co, 3, padding=1, bias=False), nn.BatchNorm2d(co), nn.ReLU(inplace=True)]


for f in folds:
    torch.manual_seed(0)
    rng = np.random.RandomState(f)
    te = parts[f]
    tr = np.concatenate([parts[k] for k in range(5) if k != f])
    Xtr, Ytr = torch.from_numpy(X[tr]), torch.from_numpy(Y[tr])
    net = nn.Sequential(*cbr(3, 32), nn.MaxPool2d(2), *cbr(32, 64), nn.MaxPool2d(2), *cbr(64, 96), *cbr(96, 96),
                        nn.MaxPool2d(2), *cbr(96, 128), *cbr(128, 128), nn.MaxPool2d(2), *cbr(128, 192),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(192, 20))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    nb = len(tr) // B
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.05, total_steps=epochs * nb)
    t0 = time.time()
    for ep in range(epochs):
        net.train()
        order = rng.permutation(len(tr))
        for b in range(nb):
            idx = order[b * B:(b + 1) * B]
            x = F.pad(Xtr[idx], (PAD, PAD, PAD, PAD), value=-1.0)
            out = torch.empty(len(idx), 3, S, S)
            for j in range(len(idx)):
                dy, dx = rng.randint(0, 2 * PAD + 1, 2)
                img = x[j, :, dy:dy + S, dx:dx + S]
                out[j] = img.flip(2) if rng.rand() < 0.5 else img
            loss = F.kl_div(F.log_softmax(net(out), 1), Ytr[idx], reduction="batchmean")
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        probs = F.softmax(net(torch.from_numpy(X[te])), 1).numpy()
    freq = (P[tr] > 0).mean(0)
    trivial = mean_ap(np.tile(freq, (len(te), 1)), P[te])
    print(f"fold {f + 1} map {100 * mean_ap(probs, P[te]):.2f} trivial {100 * trivial:.2f} "
          f"secs {time.time() - t0:.0f}", flush=True)
