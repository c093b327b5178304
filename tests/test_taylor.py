"""The Taylor-series identities of the Reptile paper (Nichol et al. 2018, Sec. 5.1), to O(alpha^2).

For k mini-batches of one regression task, averaged over the k! orderings:

    E[g_MAML]    = AvgGrad - 2 (k - 1) alpha AvgGradInner + O(alpha^2)
    E[g_FOMAML]  = AvgGrad -   (k - 1) alpha AvgGradInner + O(alpha^2)
    E[g_Reptile] = k AvgGrad - k (k - 1) / 2 alpha AvgGradInner + O(alpha^2)

Verified by the log-log slope of the residual ||E[g] - prediction|| over alpha: 2 when the
coefficients are right, 1 when the alpha coefficient is off (the check can fail).
"""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta import MLP, Task, fomaml_grad, gradcheck, maml_grad, reptile_step, taylor

pytestmark = pytest.mark.fast

# Six alphas from 5e-2 to 1e-3. The largest Hessian eigenvalue of a batch loss is ~10 here, so
# alpha lambda_max runs from ~0.5 down to 0.01: inside the radius where the series is accurate.
# At alpha = 0.1 (alpha lambda_max ~ 1) the O(alpha^3) term still bends the curve: over 1e-1..1e-3
# the k = 4 MAML slopes measure 1.86 (right) and 1.18 (wrong), over 5e-2..1e-3 1.91 and 1.03.
ALPHAS = np.geomspace(5e-2, 1e-3, 6)
# Thresholds on the fitted slope: right coefficients measured 1.91..2.00, so > 1.8; an alpha
# coefficient off by one unit measured 0.80..1.03, so < 1.3 (O(alpha) residual, slope 1).
RIGHT_SLOPE_MIN = 1.8
WRONG_SLOPE_MAX = 1.3
# Gradient check thresholds: tanh, central differences, see tinymeta.gradcheck (measured ~1e-10).
SMOOTH_TOL = 1e-6


def _problem(k_max=4, n=10, seed=0):
    """A 1-16-16-1 tanh net and k_max mini-batches (n points each) of one sine task y = 2 sin(x - p)."""
    net = MLP([1, 16, 16, 1], "tanh")
    rng = np.random.default_rng(seed)
    phi = net.init(rng)
    phase = rng.uniform(0.0, np.pi)
    batches = []
    for _ in range(k_max):
        x = rng.uniform(-5.0, 5.0, (n, 1))
        batches.append((x, 2.0 * np.sin(x - phase)))
    return net, phi, batches


def _slope(alphas, residuals):
    return float(np.polyfit(np.log(alphas), np.log(residuals), 1)[0])


# ---------------------------------------------------------------- the identities
@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("algorithm", ["maml", "fomaml", "reptile"])
def test_expected_gradient_to_first_order(algorithm, k):
    net, phi, all_batches = _problem()
    batches = all_batches[:k]
    ag = taylor.avg_grad(net, phi, batches)
    agi = taylor.avg_grad_inner(net, phi, batches)
    c0, c1 = taylor.taylor_coefficients(algorithm, k)
    right, wrong = [], []
    for alpha in ALPHAS:
        e = taylor.expected_over_orderings(algorithm, net, phi, batches, alpha)
        right.append(np.linalg.norm(e - (c0 * ag + c1 * alpha * agi)))
        wrong.append(np.linalg.norm(e - (c0 * ag + (c1 + 1.0) * alpha * agi)))  # e.g. MAML k=2: -1 alpha
    assert _slope(ALPHAS, right) > RIGHT_SLOPE_MIN, right
    assert _slope(ALPHAS, wrong) < WRONG_SLOPE_MAX, wrong
    # the first-order term is a visible part of E[g] (measured 7..90 % of ||c0 AvgGrad|| at the
    # largest alpha), and the prediction resolves it: at the smallest alpha the residual is
    # 0.16..1.2 % of ||c1 alpha AvgGradInner||
    first = np.linalg.norm(c1 * ALPHAS * agi[:, None], axis=0)
    assert first[0] > 0.05 * np.linalg.norm(c0 * ag)
    assert right[-1] < 0.05 * first[-1]


def test_coefficients():
    for k in (1, 2, 3, 4):
        assert taylor.taylor_coefficients("maml", k) == (1.0, -2.0 * (k - 1))
        assert taylor.taylor_coefficients("fomaml", k) == (1.0, -(k - 1.0))
        assert taylor.taylor_coefficients("reptile", k) == (float(k), -k * (k - 1) / 2)


def test_single_ordering_k2_expansion():
    # Without the average: g_MAML = gbar_2 - alpha Hbar_2 gbar_1 - alpha Hbar_1 gbar_2 + O(alpha^2),
    # g_FOMAML = gbar_2 - alpha Hbar_2 gbar_1 + O(alpha^2) (the paper's k = 2 derivation).
    net, phi, batches = _problem()
    b1, b2 = batches[:2]
    g1, g2 = (net.loss_and_grad(phi, *b, "mse")[1] for b in (b1, b2))
    H1g2, H2g1 = net.hvp(phi, *b1, g2), net.hvp(phi, *b2, g1)
    maml = [np.linalg.norm(taylor.maml_grad_sequence(net, phi, [b1, b2], a) - (g2 - a * H2g1 - a * H1g2))
            for a in ALPHAS]  # fmt: skip
    fo = [
        np.linalg.norm(taylor.fomaml_grad_sequence(net, phi, [b1, b2], a) - (g2 - a * H2g1)) for a in ALPHAS
    ]
    assert _slope(ALPHAS, maml) > RIGHT_SLOPE_MIN
    assert _slope(ALPHAS, fo) > RIGHT_SLOPE_MIN
    # negative control: one ordering alone does not obey the averaged identity (gbar_2 != AvgGrad)
    ag, agi = taylor.avg_grad(net, phi, [b1, b2]), taylor.avg_grad_inner(net, phi, [b1, b2])
    single = [np.linalg.norm(taylor.maml_grad_sequence(net, phi, [b1, b2], a) - (ag - 2 * a * agi))
              for a in ALPHAS]  # fmt: skip
    assert _slope(ALPHAS, single) < 0.5


def test_k1_is_exact():
    # one mini-batch: no inner step for MAML/FOMAML, one for Reptile; all equal gbar_1 = AvgGrad
    net, phi, batches = _problem()
    g = net.loss_and_grad(phi, *batches[0])[1]
    for algorithm in taylor.ALGORITHMS:
        np.testing.assert_array_equal(
            taylor.expected_over_orderings(algorithm, net, phi, batches[:1], 0.1), g
        )
        np.testing.assert_array_equal(taylor.taylor_prediction(algorithm, net, phi, batches[:1], 0.1), g)
    np.testing.assert_array_equal(taylor.avg_grad_inner(net, phi, batches[:1]), np.zeros_like(phi))


# ---------------------------------------------------------------- the helpers themselves
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_maml_grad_sequence_matches_finite_differences(k):
    # alpha = 0.1 so the Hessian products are a large part of g; FOMAML's g_k is the control
    net, phi, batches = _problem()
    f = lambda p: taylor.maml_objective_sequence(net, p, batches[:k], 0.1)
    report = gradcheck.check_grad(f, lambda p: taylor.maml_grad_sequence(net, p, batches[:k], 0.1), phi,
                                  h=1e-5, threshold=SMOOTH_TOL)  # fmt: skip
    assert report.passed, str(report)
    fo = gradcheck.check_grad(f, lambda p: taylor.fomaml_grad_sequence(net, p, batches[:k], 0.1), phi,
                              h=1e-5, threshold=SMOOTH_TOL)  # fmt: skip
    assert fo.passed is (k == 1), str(fo)  # identical when there is no inner step
    if k > 1:
        assert fo.error > 1e-2


@pytest.mark.parametrize("k", [1, 2, 4])
def test_sequences_of_one_batch_are_maml_and_reptile(k):
    # the same support batch k times then the query batch: tinymeta.maml with k inner steps
    net, phi, batches = _problem()
    A, B = batches[0], batches[1]
    task = Task(A[0], A[1], B[0], B[1])
    seq = [A] * k + [B]
    # the same float operations in the same order: bitwise equal
    np.testing.assert_array_equal(
        taylor.maml_grad_sequence(net, phi, seq, 0.1), maml_grad(net, phi, task, 0.1, k)
    )
    np.testing.assert_array_equal(
        taylor.fomaml_grad_sequence(net, phi, seq, 0.1), fomaml_grad(net, phi, task, 0.1, k)
    )
    # Reptile's gradient (phi_1 - phi_{k+1}) / alpha; the difference form loses ~eps |phi| / alpha
    # to cancellation (~1e-15 here), so relative 1e-12
    g = taylor.reptile_grad_sequence(net, phi, [A] * k, 0.1)
    np.testing.assert_allclose(
        g, (phi - reptile_step(net, phi, task, 0.1, k, 1.0)) / 0.1, rtol=1e-12, atol=1e-12
    )
    traj = taylor.sgd_trajectory(net, phi, batches[:k], 0.1)
    assert traj.shape == (k + 1, net.num_params)
    np.testing.assert_allclose(taylor.reptile_grad_sequence(net, phi, batches[:k], 0.1),
                               (traj[0] - traj[-1]) / 0.1, rtol=1e-12, atol=1e-12)  # fmt: skip


def test_avg_grad_inner_against_explicit_hessians():
    # relative 1e-12: the same products, summed in a different order (P = 305)
    net, phi, batches = _problem(k_max=3)
    grads = [net.loss_and_grad(phi, *b)[1] for b in batches]
    hessians = [net.hessian(phi, *b) for b in batches]
    pairs = [hessians[j] @ grads[i] for i in range(3) for j in range(3) if i != j]
    np.testing.assert_allclose(taylor.avg_grad_inner(net, phi, batches), np.mean(pairs, axis=0),
                               rtol=1e-12, atol=1e-12 * np.abs(pairs).max())  # fmt: skip
    np.testing.assert_allclose(taylor.avg_grad(net, phi, batches), np.mean(grads, axis=0), rtol=1e-14, atol=0)


def test_expected_over_orderings_is_the_mean_over_permutations():
    net, phi, batches = _problem(k_max=2)
    b1, b2 = batches
    for algorithm, fn in taylor.GRADIENTS.items():
        mean = (fn(net, phi, [b1, b2], 0.05) + fn(net, phi, [b2, b1], 0.05)) / 2
        np.testing.assert_array_equal(
            taylor.expected_over_orderings(algorithm, net, phi, batches, 0.05), mean
        )


def test_no_mutation_and_bad_arguments():
    net, phi, batches = _problem(k_max=2)
    phi.flags.writeable = False
    for fn in taylor.GRADIENTS.values():
        fn(net, phi, batches, 0.1)
    with pytest.raises(ValueError, match="batches is empty"):
        taylor.maml_grad_sequence(net, phi, [], 0.1)
    with pytest.raises(TypeError, match="batches"):
        taylor.maml_grad_sequence(net, phi, batches[0], 0.1)
    with pytest.raises(ValueError, match=r"batches\[1\]\[1\]"):
        taylor.fomaml_grad_sequence(net, phi, [batches[0], (batches[1][0], np.zeros((3, 1)))], 0.1)
    with pytest.raises(ValueError, match="alpha"):
        taylor.reptile_grad_sequence(net, phi, batches, 0.0)
    with pytest.raises(ValueError, match="algorithm"):
        taylor.expected_over_orderings("sgd", net, phi, batches, 0.1)
    with pytest.raises(ValueError, match="k = 8"):
        taylor.expected_over_orderings("maml", net, phi, batches * 4, 0.1)
    with pytest.raises(ValueError, match="k"):
        taylor.taylor_coefficients("maml", 0)
