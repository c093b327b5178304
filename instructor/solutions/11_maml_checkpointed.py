"""Exercise 11: the exact MAML gradient with checkpoints, for long inner loops.

Exercise 06 stores every iterate phi_0 .. phi_k: O(k P) memory. Store only the checkpoints
phi_0, phi_m, phi_2m, ... (m = ``every``) on the way forward. On the way back, for each
segment from the last to the first, recompute its iterates from its checkpoint (once) and
apply its factors right to left:

    v = grad L_B(phi_k);   v <- (I - alpha H_i) v   for i = k-1 down to 0,   H_i = hess L_A(phi_i)

(phi_0 = phi, phi_{i+1} = phi_i - alpha grad L_A(phi_i), i = 0 .. k-1, as in exercise 06).
The last segment is shorter when m does not divide k. Budgets, checked: the peak memory
allocated during the call must stay below ceil(k/m) + m + 10 vectors of P floats, and
``net.loss_and_grad`` may be called at most 2k + 1 times. (How do memory and work change
with m? Which m is best?) (Do not call ``tinymeta.maml_grad``: that is the answer.)

Check:  tinymeta exercises check 11 11_maml_checkpointed.py    (or: python 11_maml_checkpointed.py)
"""


def maml_grad_checkpointed(net, phi, task, alpha, k, every):
    """The exact MAML gradient for k inner steps, storing only every m-th iterate.

    Parameters
    ----------
    net : tinymeta.MLP
    phi : ndarray, shape (P,)
    task : tinymeta.Task, the tuple (x_support, y_support, x_query, y_query)
    alpha : float, inner step size
    k : int >= 0, number of inner steps
    every : int >= 1, the checkpoint spacing m

    Returns
    -------
    ndarray, shape (P,)
    """
    # BEGIN SOLUTION
    x_s, y_s, x_q, y_q = task
    step = lambda p: p - alpha * net.loss_and_grad(p, x_s, y_s)[1]  # noqa: E731
    checkpoints, p = {0: phi}, phi
    for i in range(k):
        p = step(p)
        if (i + 1) % every == 0 and i + 1 < k:
            checkpoints[i + 1] = p
    v = net.loss_and_grad(p, x_q, y_q)[1]
    del p
    for start in sorted(checkpoints, reverse=True):
        stop = min(start + every, k)  # the segment phi_start .. phi_{stop-1}
        segment = [checkpoints.pop(start)]
        for _ in range(start, stop - 1):
            segment.append(step(segment[-1]))
        for i in range(stop - 1, start - 1, -1):
            v = v - alpha * net.hvp(segment[i - start], x_s, y_s, v)
        del segment
    return v
    # END SOLUTION


# CHECK: a correct answer gives relative error ~1e-16 (round-off) against the exact gradient,
# within the memory and gradient budgets, for k up to 40; threshold 1e-12.

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "11", __file__]))
