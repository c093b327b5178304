"""Unowned array views for the kernels: no reshape machinery, no reference counting.

Inside the kernels every buffer is a slice of one preallocated workspace (see
:mod:`.workspace`). Numba's ``buf[a:b].reshape(n, d)`` costs 20-40 ns and, worse, an
atomic increment and decrement of the workspace's reference count per view; with
several threads taking views of arrays that share one owner, that count's cache line
bounces between cores. The views made here carry no memory owner at all, so passing them
around costs nothing. They are valid while the array they view is, i.e. during the kernel
call, and must never be returned to Python. Under ``NUMBA_DISABLE_JIT=1`` they are
ordinary NumPy views.
"""

from __future__ import annotations

from numba import config, njit, types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


@intrinsic
def _view_compiled(typingctx, buf, off, n, d):
    """An unowned (n, d) C view of ``buf[off : off + n d]``: the array struct built directly."""
    ret = types.Array(buf.dtype, 2, "C")

    def codegen(context, builder, signature, args):
        src = make_array(signature.args[0])(context, builder, args[0])
        dst = make_array(ret)(context, builder)
        item = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(buf.dtype)))
        strides = cgutils.pack_array(builder, [builder.mul(args[3], item), item])
        shape = cgutils.pack_array(builder, args[2:])
        data = builder.gep(src.data, [args[1]])
        populate_array(dst, data=data, shape=shape, strides=strides, itemsize=item, meminfo=None, parent=None)
        return dst._getvalue()

    return ret(buf, types.intp, types.intp, types.intp), codegen


@intrinsic
def _unowned_compiled(typingctx, arr):
    """The same array without its memory owner: no reference counting."""

    def codegen(context, builder, signature, args):
        src = make_array(signature.args[0])(context, builder, args[0])
        dst = make_array(signature.return_type)(context, builder)
        populate_array(dst, data=src.data, shape=src.shape, strides=src.strides, itemsize=src.itemsize,
                       meminfo=None, parent=None)  # fmt: skip
        return dst._getvalue()

    return arr(arr), codegen


if config.DISABLE_JIT:  # pure Python: ordinary NumPy views

    def view2(buf, off, n, d):
        return buf[off : off + n * d].reshape((n, d))

    def view1(buf, off, n):
        return buf[off : off + n]

    def unowned(arr):
        return arr

else:

    @njit(cache=True, inline="always")
    def view2(buf, off, n, d):
        """The (n, d) C-ordered view ``buf[off : off + n d]`` (unowned; no bounds check)."""
        return _view_compiled(buf, off, n, d)

    @njit(cache=True, inline="always")
    def unowned(arr):
        """``arr`` as an unowned view: passing it on costs no atomic reference counting."""
        return _unowned_compiled(arr)

    @njit(cache=True, inline="always")
    def view1(buf, off, n):
        """``buf[off : off + n]`` as an unowned view."""
        return _view_compiled(buf, off, 1, n)[0]
