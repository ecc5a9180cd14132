#!/usr/bin/env python3
"""Error of Winograd F(m x m, 3x3) in f32 against the direct convolution in f64, per choice of
interpolation points: the measurement behind `F4_ERROR_BUDGET` and the points of
`crates/wgcnn-kernels/src/conv2d/winograd.rs` (G4) and `shaders/conv2d_winograd4_*.wgsl`.

    target/torch-venv/bin/python bench/winograd_error.py [-v]

Builds A^T, G and B^T from the points (Toom-Cook; B^T solved exactly with sympy, its rows scaled
to integers with the scale moved into G, which the engine applies once in f64), checks them on a
1-D correlation, then models the kernels in f32 (input transform, a GEMM accumulating one input
channel at a time as conv2d_winograd_gemm.wgsl does, output transform) on random layers with
weights as the fixtures' rule draws them (uniform within sqrt(6 / fan_in)) and centred, ReLU'd
and offset inputs. Prints max |error| / max |exact output| per point set, beside the direct
convolution in f32. `-v` prints the matrices. Needs numpy and sympy (both come with torch).
"""
import sys, itertools
import numpy as np
import sympy as sp

def matrices(points, m, r=3):
    n = m + r - 1
    assert len(points) == n - 1
    P = [sp.Rational(p) for p in points]
    AT = sp.zeros(m, n)
    for i in range(m):
        for j in range(n - 1):
            AT[i, j] = P[j] ** i
    AT[m - 1, n - 1] = 1
    G = sp.zeros(n, r)
    for j in range(n - 1):
        N = sp.prod([P[j] - P[l] for l in range(n - 1) if l != j])
        for k in range(r):
            G[j, k] = P[j] ** k / N
    G[n - 1, r - 1] = 1
    # Solve for BT: y_i = sum_j AT[i,j] (G g)_j (BT d)_j == sum_k g_k d_{i+k} for all g, d.
    BT = sp.Matrix(n, n, lambda a, b: sp.Symbol(f"b{a}_{b}"))
    eqs = []
    for i in range(m):
        for k in range(r):
            for l in range(n):
                eqs.append(sum(AT[i, j] * G[j, k] * BT[j, l] for j in range(n)) - (1 if l == i + k else 0))
    sol = sp.solve(eqs, list(BT))
    BT = BT.subs(sol)
    # Make BT rows integer (scale into G).
    for j in range(n):
        den = sp.ilcm(*[sp.fraction(sp.nsimplify(v))[1] for v in BT.row(j)])
        num = sp.igcd(*[int(v * den) for v in BT.row(j) if v != 0])
        s = sp.Rational(den, num)
        BT[j, :] = BT[j, :] * s
        G[j, :] = G[j, :] / s
    return AT, G, BT

def check(AT, G, BT, m):
    rng = np.random.default_rng(0)
    g = rng.standard_normal(3); d = rng.standard_normal(m + 2)
    y = np.array(AT, dtype=float) @ ((np.array(G, dtype=float) @ g) * (np.array(BT, dtype=float) @ d))
    want = np.array([sum(g[k] * d[i + k] for k in range(3)) for i in range(m)])
    assert np.allclose(y, want), (y, want)

def conv_direct(x, w):  # x [C,H+2,W+2] padded, w [K,C,3,3], f64
    C, Hp, Wp = x.shape; H, W = Hp - 2, Wp - 2
    y = np.zeros((w.shape[0], H, W))
    for a in range(3):
        for b in range(3):
            y += np.einsum("kc,chw->khw", w[:, :, a, b], x[:, a:a + H, b:b + W])
    return y

def wino_f32(x, w, AT, G, BT, m):
    n = m + 2
    AT32, BT32 = np.array(AT, dtype=np.float32), np.array(BT, dtype=np.float32)
    G64 = np.array(G, dtype=np.float64)
    C, Hp, Wp = x.shape; H, W = Hp - 2, Wp - 2
    th, tw = H // m, W // m
    U = np.einsum("ia,kcab,jb->ijkc", G64, w, G64).astype(np.float32)  # [n,n,K,C]
    x32 = x.astype(np.float32)
    # tiles d [C, th, tw, n, n]
    d = np.stack([np.stack([x32[:, ty*m:ty*m+n, tx*m:tx*m+n] for tx in range(tw)], 1) for ty in range(th)], 1)
    V = np.einsum("ia,ctsab->ctsib", BT32, d).astype(np.float32)
    V = np.einsum("ctsib,jb->ijcts", V, BT32).astype(np.float32)  # [n,n,C,th,tw]
    K = w.shape[0]
    M = np.zeros((n, n, K, th, tw), dtype=np.float32)
    for c in range(C):  # sequential f32 accumulation, as the GEMM does
        M += U[:, :, :, c][..., None, None] * V[:, :, c][:, :, None]
    Y = np.einsum("ia,abkts->ibkts", AT32, M).astype(np.float32)
    Y = np.einsum("ibkts,jb->kijts", Y, AT32).astype(np.float32)  # [K, m, m, th, tw]
    return Y.transpose(0, 3, 1, 4, 2).reshape(K, th * m, tw * m)

def direct_f32(x, w):
    C = x.shape[0]; H, W = x.shape[1] - 2, x.shape[2] - 2
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    y = np.zeros((w.shape[0], H, W), dtype=np.float32)
    for c in range(C):
        for a in range(3):
            for b in range(3):
                y += w32[:, c, a, b][:, None, None] * x32[c, a:a + H, b:b + W][None]
    return y

if __name__ == "__main__":
    sets = {
        "F2 (0,1,-1)": ([0, 1, -1], 2),
        "F4 (0,1,-1,2,-2)": ([0, 1, -1, 2, -2], 4),
        "F4 (0,1,-1,1/2,-2)": ([0, 1, -1, sp.Rational(1, 2), -2], 4),
        "F4 (0,1,-1,1/2,-1/2)": ([0, 1, -1, sp.Rational(1, 2), sp.Rational(-1, 2)], 4),
        "F4 (0,1,-1,2,-1/2)": ([0, 1, -1, 2, sp.Rational(-1, 2)], 4),
    }
    mats = {}
    for name, (pts, m) in sets.items():
        AT, G, BT = matrices(pts, m)
        check(AT, G, BT, m)
        mats[name] = (AT, G, BT, m)
        if "-v" in sys.argv:
            print(name); print("AT", AT.tolist()); print("G", G.tolist()); print("BT", BT.tolist())
    rng = np.random.default_rng(1)
    for C, K, H in [(256, 64, 24), (64, 64, 24), (512, 32, 16)]:
        bound = np.sqrt(6 / (C * 9))
        w = rng.uniform(-bound, bound, (K, C, 3, 3))
        for dist in ["normal", "relu", "relu+1"]:
            x = rng.standard_normal((C, H + 2, H + 2))
            if dist == "relu": x = np.maximum(x, 0)
            if dist == "relu+1": x = np.maximum(x, 0) + 1.0
            x[:, 0, :] = x[:, -1, :] = x[:, :, 0] = x[:, :, -1] = 0
            ref = conv_direct(x, w)
            scale = np.abs(ref).max()
            res = [f"direct-f32 {np.abs(direct_f32(x, w) - ref).max() / scale:.2e}"]
            for name, (AT, G, BT, m) in mats.items():
                e = np.abs(wino_f32(x, w, AT, G, BT, m) - ref).max() / scale
                res.append(f"{name} {e:.2e}")
            print(f"C={C} K={K} {H}x{H} x~{dist}: " + ", ".join(res), flush=True)
