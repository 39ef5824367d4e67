"""bench/gpu_peer.py - the PyTorch peer of `make bench-gpu`: the age network of
specs/age.dldl (the same stack as ../shared/reference/torch_age.py: eight 3x3
conv + batch norm + ReLU, three max-pools, global average pool, linear to 117
age bins, KL + expectation-L1, SGD momentum 0.9, weight decay 5e-4) on CUDA,
eager and torch.compile, on synthetic 64x64 inputs already on the GPU (the
figures are the network's, without a data pipeline).

Prints one line per figure, `MODE FIGURE VALUE`, e.g. `eager train_img_s 12345.6`:
  train_img_s  training images/s at batch 64 (forward, backward, SGD step)
  infer_img_s  inference images/s at batch 64 (eval mode, no grad)
  latency_ms   inference latency at batch 1, milliseconds (median)
Usage: python3 bench/gpu_peer.py [STEPS]   (default 200 timed steps after 20 warm-up)
Never run on these machines (no GPU): written for `make bench-gpu` on one."""
import statistics, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
assert torch.cuda.is_available(), "bench/gpu_peer.py needs a CUDA GPU"
dev = torch.device("cuda")
torch.backends.cudnn.benchmark = False
torch.backends.cuda.matmul.allow_tf32 = False   # dldl computes in float32 (FMA math), no TF32
torch.backends.cudnn.allow_tf32 = False
AGES = torch.arange(0, 117, dtype=torch.float32, device=dev)

def block(ci, co): return [nn.Conv2d(ci, co, 3, padding=1, bias=False), nn.BatchNorm2d(co), nn.ReLU(inplace=True)]
def network():
    return nn.Sequential(*block(3, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64), *block(64, 64),
                         nn.MaxPool2d(2), *block(64, 128), *block(128, 128), nn.MaxPool2d(2), *block(128, 128),
                         *block(128, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 117)).to(dev)

def timed(fn, n):
    for _ in range(20): fn()
    torch.cuda.synchronize()
    t = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); torch.cuda.synchronize(); t.append(time.perf_counter() - t0)
    return statistics.median(t)

for mode in ("eager", "compile"):
    torch.manual_seed(0)
    net = network()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    fwd = torch.compile(net) if mode == "compile" else net
    x = torch.randn(64, 3, 64, 64, device=dev); a = torch.rand(64, device=dev) * 116
    y = torch.exp(-(AGES[None] - a[:, None]) ** 2 / 8); y = y / y.sum(1, keepdim=True)
    def train_step():
        logp = F.log_softmax(fwd(x), 1); p = logp.exp()
        loss = F.kl_div(logp, y, reduction="batchmean") + ((p @ AGES) - a).abs().mean()
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    net.train()
    print(f"{mode} train_img_s {64 / timed(train_step, steps):.1f}", flush=True)
    net.eval()
    with torch.no_grad():
        print(f"{mode} infer_img_s {64 / timed(lambda: F.softmax(fwd(x), 1) @ AGES, steps):.1f}", flush=True)
        x1 = x[:1].contiguous()
        print(f"{mode} latency_ms {1e3 * timed(lambda: F.softmax(fwd(x1), 1) @ AGES, steps):.3f}", flush=True)
