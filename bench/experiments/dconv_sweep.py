# Experiment (session 3): times bench/experiments/dconv.cu against cuDNN (strict float32, L2
# flushed, median of 20) on the GPU suite's convolution shapes, for several tilings, and checks
# every result against torch within 1e-4. Needs torch with CUDA and cupy.
#   python3 bench/experiments/dconv_sweep.py bench/experiments/dconv.cu [shape-name-filter...]
import sys, torch, cupy as cp, itertools, time
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
src = open(sys.argv[1]).read()
shapes = [  # name, N, CIN, COUT, H, W, K, S, PAD
    ("l2/7 16->32 128", 128, 16, 32, 128, 128, 3, 1, 0),
    ("l2/9 16->32 96", 256, 16, 32, 96, 96, 3, 1, 1),
    ("l2/6 48->48 64", 256, 48, 48, 64, 64, 3, 1, 1),
    ("l1/2 64->64 128", 32, 64, 64, 128, 128, 3, 1, 1),
    ("cnn1 3->32 64", 1024, 3, 32, 64, 64, 3, 1, 1),
    ("cnn2 32->64 32", 1024, 32, 64, 32, 32, 3, 1, 1),
    ("cnn3 64->128 16", 1024, 64, 128, 16, 16, 3, 1, 1),
    ("res2 128->128 56", 32, 128, 128, 56, 56, 3, 1, 1),
    ("res1 64->128 s2", 32, 64, 128, 112, 112, 3, 2, 1),
]
cfgs = [  # COB CO PX TH TW CIT
    (32, 8, 4, 8, 32, 8), (32, 8, 4, 4, 32, 8), (64, 16, 4, 8, 32, 8), (16, 8, 4, 8, 32, 8),
    (32, 8, 8, 8, 32, 4), (64, 8, 4, 8, 32, 8), (48, 12, 4, 8, 32, 8), (32, 8, 4, 16, 16, 8),
    (64, 16, 4, 16, 16, 8), (32, 16, 4, 8, 32, 8), (64, 16, 4, 4, 32, 4),
]
flush = torch.empty(128 << 20, dtype=torch.uint8, device="cuda")
def timeit(fn, n=20):
    ts = []
    for i in range(3): fn()
    for i in range(n):
        flush.fill_(i & 255)
        a = torch.cuda.Event(enable_timing=True); b = torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record(); b.synchronize(); ts.append(a.elapsed_time(b))
    ts.sort(); return ts[n // 2]
only = sys.argv[2:] 
for (name, N, CIN, COUT, H, W, K, S, PAD) in shapes:
    if only and not any(o in name for o in only): continue
    OH = (H + 2 * PAD - K) // S + 1; OW = (W + 2 * PAD - K) // S + 1
    x = torch.randn(N, CIN, H, W, device="cuda"); w = torch.randn(COUT, CIN, K, K, device="cuda") / (CIN * K * K) ** 0.5
    b = torch.randn(COUT, device="cuda")
    ref = torch.nn.functional.conv2d(x, w, b, stride=S, padding=PAD)
    tref = timeit(lambda: torch.nn.functional.conv2d(x, w, b, stride=S, padding=PAD))
    gfl = 2.0 * N * COUT * OH * OW * CIN * K * K / 1e9
    print(f"{name}: cudnn {tref:.3f} ms ({gfl / tref:.1f} TF)", flush=True)
    y = torch.empty_like(ref)
    for (COB, CO, PX, TH, TW, CIT) in cfgs:
        if COB > COUT * 2 or (S != 1 and PX % 4 == 0 and False): continue
        if TW > 2 * OW: continue
        defs = dict(N=N, CIN=CIN, COUT=COUT, H=H, W=W, OH=OH, OW=OW, K=K, S=S, PAD=PAD, COB=COB, CO=CO, PX=PX, TH=TH, TW=TW, CIT=CIT)
        opts = tuple(f"-D{k}={v}" for k, v in defs.items()) + ("--fmad=false", "-std=c++17")
        try:
            mod = cp.RawModule(code=src, options=opts); fn = mod.get_function("dconv")
        except Exception as e:
            print("  cfg", (COB, CO, PX, TH, TW, CIT), "compile error", str(e)[:300]); continue
        NT = (TH * TW // PX) * (COB // CO)
        grid = (((OH + TH - 1) // TH) * ((OW + TW - 1) // TW), (COUT + COB - 1) // COB, N)
        xa, wa, ba, ya = (cp.asarray(t) for t in (x, w, b, y))
        run = lambda: fn(grid, (NT,), (xa, wa, ba, ya))
        y.fill_(float("nan")); run(); torch.cuda.synchronize()
        err = ((y - ref).abs() - 1e-4 * ref.abs()).max().item()
        ok = err <= 1e-4
        t = timeit(run)
        print(f"  cfg {COB},{CO},{PX},{TH},{TW},{CIT} nt {NT}: {t:.3f} ms ({gfl / t:.1f} TF) x{tref / t:.2f} {'ok' if ok else 'WRONG %g' % err}", flush=True)
