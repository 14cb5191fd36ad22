"""Benchmark: closed-form FGSM via the input-Jacobian cache vs autodiff (kernel_fn).

The paper (supp. Eq. 9) computes ∇ₓf_t = D(x)ᵀ c_t from a precomputed Jacobian of the
analytic kernel instead of differentiating the kernel machine; the authors' notebook
differentiates the BCE loss of f_∞ through `kernel_fn` with `jax.grad`. Both routes are
timed here on the same FC1 kernel on binary CIFAR (airplane vs automobile), the same
adversarial points are asserted, and the speed-up is printed.

Run: uv run python benchmarks/bench_attacks.py [--n-train 1000] [--n-eval 100]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ntkadv import data, losses  # noqa: E402
from ntkadv.attacks import closed_form, pgd  # noqa: E402
from ntkadv.kernels import analytic, blocked, jacobians  # noqa: E402
from ntkadv.spectra import eigh, predictor  # noqa: E402


def load_cifar2(n_train: int, n_eval: int):
    """First n images of airplane/automobile (the notebook's selection)."""
    files = data.locate_raw("cifar10", [str(REPO.parent / "shared" / "data")])
    if any(v is None for v in files.values()):
        raise SystemExit("CIFAR-10 not found in ../shared/data")
    train, test = data.load_raw("cifar10", {Path(p).name: p for p in files.values()})
    arr = data.make_subset(train, test, [0, 1], n_train, n_eval, "first", 0)
    return (
        arr["x_train"].astype(np.float64),
        arr["y_train"].astype(np.float64),
        arr["x_test"].astype(np.float64),
        arr["y_test"].astype(np.float64),
    )


def best_of(fn, repeats: int) -> tuple[float, object]:
    """Minimum wall time of `repeats` calls (after one warm-up) and the output."""
    out = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


ARCHS = {"fc1": {"family": "fc", "depth": 1}, "conv1": {"family": "conv", "depth": 1}}


def bench_one(name: str, data, eps: float, repeats: int, block: int) -> float:
    """Time and cross-check both FGSM routes for one kernel; returns the ratio."""
    x_train, y_train, x_eval, y_eval = data
    spec = ARCHS[name]
    kernel_fn = analytic.kernel_fn_from_spec(spec)
    gram = blocked.ntk_gram_blocked(kernel_fn, x_train, None, 100)
    k_eval = blocked.ntk_gram_blocked(kernel_fn, x_eval, x_train, 100)
    c = predictor.coefficients(eigh.eigendecompose(gram), y_train, np.inf, 1.0)
    f = k_eval @ c
    x_flat = x_eval.reshape(len(x_eval), -1)

    start = time.perf_counter()
    jac = jacobians.input_jacobian_fn(kernel_fn, spec["family"])(x_eval, x_train, 100)
    t_cache_build = time.perf_counter() - start

    def via_cache():
        grad_f = jac.contract(c)  # supp. Eq. 9
        g = losses.loss_input_gradient(f, grad_f, y_eval, "binary")
        return closed_form.fgsm_step(x_flat, g, eps)

    grad_fn = jax.jit(pgd.loss_gradient_fn(kernel_fn, "binary"))
    xe, ye, xt, cj = map(jnp.asarray, (x_eval, y_eval, x_train, c))

    def autodiff_grad():  # the notebook's route: jax.grad through kernel_fn
        parts = [
            grad_fn(xe[i : i + block], ye[i : i + block], xt, cj)
            for i in range(0, len(xe), block)
        ]
        return np.asarray(jnp.concatenate(parts)).reshape(len(xe), -1)

    start = time.perf_counter()
    g_auto = autodiff_grad()
    t_first = time.perf_counter() - start

    def via_autodiff():
        return closed_form.fgsm_step(x_flat, autodiff_grad(), eps)

    t_cache, adv_cache = best_of(via_cache, repeats)
    t_auto, adv_auto = best_of(via_autodiff, repeats)
    # components whose sign is decided above round-off (the CONV cache is float32)
    tol = 1e-9 if jac.form == "factored" else 1e-5
    big = np.abs(g_auto) > tol * np.abs(g_auto).max()
    np.testing.assert_array_equal(adv_cache[big], adv_auto[big])
    agree = float(np.mean(adv_cache == adv_auto))
    k_adv = blocked.ntk_gram_blocked(
        kernel_fn, adv_cache.reshape(x_eval.shape), x_train, 100
    )
    print(
        f"{name.upper()} NTK, binary CIFAR, n_train={len(x_train)}, "
        f"n_eval={len(x_eval)}, eps=8/255, f_inf; best of {repeats}"
    )
    print(
        f"  accuracy clean {losses.accuracy(f, y_eval, 'binary'):.3f}, "
        f"FGSM {losses.accuracy(k_adv @ c, y_eval, 'binary'):.3f}"
    )
    print(f"  Jacobian cache build (one-off, every t and eps): {t_cache_build:8.2f} s")
    print(f"  FGSM via cache (Eq. 9 contraction):              {t_cache:8.3f} s")
    print(
        f"  FGSM via jax.grad through kernel_fn:             {t_auto:8.3f} s"
        f"  (first call incl. compile {t_first:.2f} s)"
    )
    print(
        f"  identical adversarial pixels: {agree:.6f} "
        f"(asserted where |grad| > {tol:g} max)"
    )
    print(f"  ratio autodiff / cache: {t_auto / t_cache:.2f}x")
    return t_auto / t_cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="fc1,conv1")
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-eval", type=int, default=100)
    parser.add_argument("--n-eval-conv", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--block", type=int, default=25, help="autodiff points per call"
    )
    args = parser.parse_args()
    for name in args.archs.split(","):
        n_eval = args.n_eval_conv if ARCHS[name]["family"] == "conv" else args.n_eval
        data = load_cifar2(args.n_train, n_eval)
        bench_one(name, data, 8 / 255, args.repeats, args.block)


if __name__ == "__main__":
    main()
