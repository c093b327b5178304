"""Exercise 08: the Taylor coefficients of MAML, FOMAML and Reptile (Nichol et al. 2018, Sec. 5).

Take k mini-batches of one task with losses L_0 .. L_{k-1}. The inner steps (SGD, step alpha)
start at phi_0 = phi and step i uses batch i:

    phi_{i+1} = phi_i - alpha g_i,   g_i = grad L_i(phi_i),   H_i = hess L_i(phi_i)   (i = 0 .. k-1),

the indexing of tutorials 03 and 04 (the paper starts at phi_1 instead). At the initial point
write gbar_i = grad L_i(phi_0) and Hbar_i = hess L_i(phi_0). The three directions:

* MAML and FOMAML take k - 1 steps, on batches 0 .. k-2; batch k-1 is the query:
      g_MAML   = (I - alpha H_0) ... (I - alpha H_{k-2}) grad L_{k-1}(phi_{k-1})
      g_FOMAML = grad L_{k-1}(phi_{k-1})
* Reptile takes all k steps and g_Reptile = (phi_0 - phi_k) / alpha = g_0 + ... + g_{k-1}.

Expand each to first order in alpha (grad L_i(phi_i) = gbar_i + Hbar_i (phi_i - phi_0) + ...)
and take the expectation over the order of the batches, with

    AvgGrad = E[gbar_i],   AvgGradInner = E[Hbar_i gbar_j]  (i != j).

Each result has the form

    E[g] = c0 AvgGrad + c1 alpha AvgGradInner + O(alpha^2),

with the sign convention of tutorial 04 and ``tinymeta.taylor.taylor_coefficients`` (c1 carries
its own sign). Derive (c0, c1) for each algorithm for k = 3 by hand, then for any k >= 1.

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
    ### YOUR CODE HERE
    raise NotImplementedError("exercise 08: write the coefficients (c0, c1)")


# CHECK: a correct answer gives relative error 0 against the exact first-order expansion
# (threshold 1e-09), for k = 1 to 4 and one larger k, and ~1e-10 against values measured on an
# MLP for k <= 4 (threshold 1e-05).

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "08", __file__]))
