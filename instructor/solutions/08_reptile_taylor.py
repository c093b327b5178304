"""Exercise 08: the Taylor coefficients of MAML, FOMAML and Reptile (Nichol et al. 2018, Sec. 5).

Take k mini-batches with losses L_1 .. L_k and write, at the initial phi,
gbar_i = grad L_i(phi) and Hbar_i = hess L_i(phi). The three algorithms (SGD inner steps):

* MAML and FOMAML take k - 1 steps, phi_i = phi_{i-1} - alpha grad L_i(phi_{i-1}) on batches
  1 .. k-1; batch k is the query:
      g_MAML   = (I - alpha H_1(phi_0)) ... (I - alpha H_{k-1}(phi_{k-2})) grad L_k(phi_{k-1})
      g_FOMAML = grad L_k(phi_{k-1})
* Reptile takes k steps on batches 1 .. k and g_Reptile = (phi - phi_k) / alpha.

Expand each to first order in alpha (grad L_i(phi_{i-1}) = gbar_i + Hbar_i (phi_{i-1} - phi) + ...)
and take the expectation over the order of the batches, with

    AvgGrad = E[gbar_i],   AvgGradInner = E[Hbar_i gbar_j]  (i != j).

Each result has the form  E[g] = c0 AvgGrad - c1 alpha AvgGradInner + O(alpha^2).
Derive (c0, c1) for each algorithm for k = 3 by hand, then for any k >= 1.

Check:  tinymeta exercises check 08 08_reptile_taylor.py    (or: python 08_reptile_taylor.py)
"""


def taylor_coefficients(k):
    """The first-order coefficients (c0, c1) of MAML, FOMAML and Reptile with k mini-batches.

    Parameters
    ----------
    k : int >= 1

    Returns
    -------
    dict {"maml": (c0, c1), "fomaml": (c0, c1), "reptile": (c0, c1)}
    """
    # BEGIN SOLUTION
    return {"maml": (1, 2 * (k - 1)), "fomaml": (1, k - 1), "reptile": (k, k * (k - 1) // 2)}
    # END SOLUTION


# CHECK: a correct answer gives relative error 0 against the exact first-order expansion
# (threshold 1e-09) and ~1e-10 against values measured on an MLP, k = 3, 1, 2, 4; threshold 1e-05.

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "08", __file__]))
