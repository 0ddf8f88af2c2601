#!/usr/bin/env python3
"""Reference values for the specs in this folder, computed independently of the TypeScript code.

Run `python3 packages/router-canary/src/stats/reference.py` (numpy 2.4, scipy 1.17). The specs hard-code
what it prints. The mixture likelihood ratio is integrated numerically (scipy.integrate.quad) rather than
taken from its closed form, and the confidence-sequence bounds are found as the roots of Λ(δ0) = 1/α
(scipy.optimize.brentq); the closed forms are only checked against them here. The last section prints the
τ trade-off quoted in docs/router-canary.md.
"""
import math

import numpy as np
from scipy import integrate, optimize, stats


def show(name, value):
    print(f"  {name}: {float(value)!r},")


# --- Welford vs numpy (mean, var with ddof=1) -------------------------------------------------------------
DATA1 = [12.5, 13.1, 11.9, 250.0, 14.2, 12.8, 13.7, 15.1, 12.2, 13.3]
DATA2 = [1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16]

print("// moments")
for name, data in (("data1", DATA1), ("data2", DATA2)):
    a = np.array(data)
    print(f"{name}: {{")
    show("mean", a.mean())
    show("variance", a.var(ddof=1))
    print("},")


# --- the normal-mixture likelihood ratio, by quadrature ---------------------------------------------------
def log_lambda_quad(est, v, tau, delta0):
    """ln ∫ N(est; θ, V) / N(est; δ0, V) · N(θ; δ0, τ²) dθ, integrated around the posterior mode."""
    d = est - delta0
    mode = delta0 + d * tau**2 / (v + tau**2)
    sd = math.sqrt(v * tau**2 / (v + tau**2))

    def g(theta):
        return (-((est - theta) ** 2) + d * d) / (2 * v) + stats.norm.logpdf(theta, delta0, tau)

    gmax = g(mode)
    val, _ = integrate.quad(lambda t: math.exp(g(t) - gmax), mode - 40 * sd, mode + 40 * sd, points=[mode], epsabs=0, epsrel=1e-13, limit=200)
    return gmax + math.log(val)


def log_lambda_closed(est, v, tau, delta0):
    return 0.5 * math.log(v / (v + tau**2)) + (est - delta0) ** 2 * tau**2 / (2 * v * (v + tau**2))


def bounds_by_root(est, v, tau, alpha):
    """The δ0 on either side of the estimate where Λ(δ0) = 1/α: the confidence sequence's ends."""
    f = lambda d0: log_lambda_quad(est, v, tau, d0) - math.log(1 / alpha)
    span = 10 * math.sqrt(v * (v + tau**2)) / tau * math.sqrt(2 * math.log(1 / alpha) + math.log((v + tau**2) / v)) + 1e-9
    lo = optimize.brentq(f, est - span, est, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    hi = optimize.brentq(f, est, est + span, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    return lo, hi


def half_width_closed(v, tau, alpha):
    return math.sqrt(v * (v + tau**2) / tau**2 * (2 * math.log(1 / alpha) + math.log((v + tau**2) / v)))


def report(name, est, v, tau, alpha, delta0, n_c, n_t, clip=None):
    ll = log_lambda_quad(est, v, tau, delta0)
    assert abs(ll - log_lambda_closed(est, v, tau, delta0)) < 1e-9 * max(1, abs(ll)), name
    lo, hi = bounds_by_root(est, v, tau, alpha)
    hw = half_width_closed(v, tau, alpha)
    assert abs(lo - (est - hw)) < 1e-9 * max(1, abs(lo)) and abs(hi - (est + hw)) < 1e-9 * max(1, abs(hi)), name
    if clip is not None:
        lo, hi = max(clip[0], lo), min(clip[1], hi)
    print(f"{name}: {{")
    show("estimate", est)
    show("lower", lo)
    show("upper", hi)
    show("lambda", math.exp(ll))
    show("pValue", min(1.0, math.exp(-ll)))
    show("variance", v)
    print(f"  nControl: {n_c},\n  nTreatment: {n_t},\n}},")


# (control n, mean, variance), (treatment n, mean, variance), tau, alpha, delta0
MEANS = {
    "m1": ((400, 5.00, 0.09), (380, 5.04, 0.11), 0.1, 0.05, 0.0),
    "m2": ((50, 1.2, 0.5), (60, 0.9, 0.4), 0.1, 0.01, 0.0),
    "m3": ((1000, 2.0, 0.25), (1200, 2.12, 0.3), 0.05, 0.0125, 0.05),
    "m4": ((200, 0.0, 1.0), (200, 0.1, 1.2), 0.2, 0.1, -0.1),
    "m5": ((500, 3.0, 0.2), (500, 3.3, 0.2), 0.1, 0.05, 0.0),
}
print("// compareMeans")
for name, ((nc, mc, vc), (nt, mt, vt), tau, alpha, d0) in MEANS.items():
    report(name, mt - mc, vc / nc + vt / nt, tau, alpha, d0, nc, nt)


def shrunk_var(k, n):
    p = (k + 0.5) / (n + 1)  # one pseudo-observation at 1/2
    return p * (1 - p) / n


# (control n, successes), (treatment n, successes), tau, alpha, delta0
PROPS = {
    "p1": ((100, 0), (100, 30), 0.03, 0.05, 0.0),
    "p2": ((100, 0), (100, 0), 0.03, 0.05, 0.0),
    "p3": ((1000, 12), (1000, 25), 0.03, 0.0125, 0.0),
    "p4": ((100, 100), (100, 98), 0.03, 0.05, 0.0),
    "p5": ((5000, 50), (5000, 120), 0.03, 0.05, 0.01),
    "p6": ((2, 0), (2, 2), 0.03, 0.05, 0.0),
}
print("// compareProportions")
for name, ((nc, kc), (nt, kt), tau, alpha, d0) in PROPS.items():
    report(name, kt / nt - kc / nc, shrunk_var(kc, nc) + shrunk_var(kt, nt), tau, alpha, d0, nc, nt, clip=(-1, 1))

print("// meanSequence, proportionSequence")
report("s1", 0.7, 2.0 / 30, 0.1, 0.05, 0.0, 0, 30)
report("s2", 7 / 200, shrunk_var(7, 200), 0.03, 0.05, 0.0, 0, 200, clip=(0, 1))
report("s3", 0 / 3, shrunk_var(0, 3), 0.03, 0.05, 0.0, 0, 3, clip=(0, 1))

# --- the fixed-horizon z-test -----------------------------------------------------------------------------
print("// fixedHorizonZTest")
Z_MEANS = {**{k: v[:2] for k, v in MEANS.items()}, "tail": ((1000, 0.0, 1.0), (1000, 0.313, 1.0))}
for name, ((nc, mc, vc), (nt, mt, vt)) in Z_MEANS.items():
    z = (mt - mc) / math.sqrt(vc / nc + vt / nt)
    print(f"z_{name}: {{ z: {z!r}, pValue: {float(2 * stats.norm.sf(abs(z)))!r} }},")
for name in ("p1", "p3", "p5"):
    (nc, kc), (nt, kt) = PROPS[name][:2]
    pooled = (kc + kt) / (nc + nt)
    z = (kt / nt - kc / nc) / math.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nt))
    print(f"z_{name}: {{ z: {z!r}, pValue: {float(2 * stats.norm.sf(abs(z)))!r} }},")

# --- quantile vs numpy.quantile (method 'linear', the default) --------------------------------------------
print("// quantile")
VALUES = sorted([3.1, 0.5, 2.2, 9.7, 4.4, 1.0, 7.3])
QS = [0, 0.1, 0.25, 0.5, 0.9, 0.95, 0.99, 1]
print("values:", [float(x) for x in np.quantile(VALUES, QS)])
print("pair:", [float(x) for x in np.quantile([10.0, 20.0], [0, 0.3, 0.5, 1])])

# --- the tau trade-off (for the docs) ---------------------------------------------------------------------
print("// requests per arm until detection, alpha = 0.05 / 4, expected counts")


def n_needed(est_of_n, var_of_n, tau, alpha):
    for n in np.unique(np.logspace(1, 6, 4000).astype(int)):
        if log_lambda_closed(est_of_n(n), var_of_n(n), tau, 0.0) >= math.log(1 / alpha):
            return int(n)
    return None


TAUS = [0.01, 0.02, 0.03, 0.05, 0.1]
print("error rate  ", "  ".join(f"tau={t:<5}" for t in TAUS))
for pc, pt in [(0.001, 0.011), (0.01, 0.02), (0.05, 0.06), (0.01, 0.06), (0.0, 0.3), (0.01, 0.5)]:
    row = [n_needed(lambda n: pt - pc, lambda n: shrunk_var(pc * n, n) + shrunk_var(pt * n, n), t, 0.0125) for t in TAUS]
    print(f"{pc:.3f}->{pt:.3f}", "  ".join(f"{r:<9}" for r in row))
TAUS = [0.03, 0.05, 0.1, 0.2, 0.3]
print("log latency, sd 0.5", "  ".join(f"tau={t:<5}" for t in TAUS))
for d in [0.05, 0.1, 0.2, 0.5, 0.7]:
    row = [n_needed(lambda n: d, lambda n: 2 * 0.25 / n, t, 0.0125) for t in TAUS]
    print(f"delta {d:<4}", "  ".join(f"{r:<9}" for r in row))
