"""Exercise 07: one outer step of Reptile (Nichol, Achiam & Schulman 2018, Algorithm 2).

For each of the M tasks of the meta-batch, run k steps of plain gradient descent (step size
alpha, the whole support set every step) from phi_0 = phi on the task's support loss L_A:
that gives phi~_j = phi_k. Then move phi toward the adapted parameters,

    phi_new = phi + epsilon * (1/M) sum_j (phi~_j - phi)       (M tasks, j = 1 .. M).

Use ``net.loss_and_grad(phi, X, Y) -> (loss, grad)`` (mse loss). Do not modify phi in place.
Then think: what is phi_new for k = 1? (Do not call ``tinymeta.reptile_step``.)

Check:  tinymeta exercises check 07 07_reptile_step.py    (or: python 07_reptile_step.py)
"""

import numpy as np  # noqa: F401  (you will need it)


def reptile_step(net, phi, tasks, alpha, k, epsilon):
    """phi + epsilon * mean over the M tasks of (phi~_j - phi), phi~_j after k SGD steps on the support set.

    Parameters
    ----------
    net : tinymeta.MLP
    phi : ndarray, shape (P,)
    tasks : list of M tinymeta.Task (x_support, y_support, x_query, y_query); only the support sets are used
    alpha : float, inner step size
    k : int >= 0, inner steps per task
    epsilon : float, outer step size

    Returns
    -------
    ndarray, shape (P,), the new parameters
    """
    ### YOUR CODE HERE
    raise NotImplementedError("exercise 07: write the Reptile step")


# CHECK: a correct answer gives relative error 0 to ~1e-16 (round-off) against tinymeta.reptile_step,
# for 1 to 5 tasks and k = 0, 1, 2, 3, 5; threshold 1e-10.

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "07", __file__]))
