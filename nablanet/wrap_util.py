"""HIPS autograd's ``autograd.wrap_util``: :func:`unary_to_nary`, to write a transform for one-argument functions
and get autograd's ``transform(fun, argnum=0)(*args)`` interface.

A compatibility module at the top of the package; nothing in nablanet imports it (nablanet's own transforms
take ``argnums`` themselves, see :mod:`nablanet.autodiff.transforms`).
"""

from __future__ import annotations

import functools

__all__ = ["unary_to_nary"]


def unary_to_nary(unary_operator):
    """Make ``unary_operator(fun, x, *op_args, **op_kwargs)``, an operator on a function of one argument, into
    ``nary_operator(fun, argnum=0, *op_args, **op_kwargs)``, which returns a function of all of ``fun``'s
    arguments.  That function applies ``unary_operator`` to ``fun`` seen as a function of argument number
    ``argnum`` alone (the others fixed); with a tuple (or list) of argument numbers, of the tuple of those
    arguments.

    >>> from nablanet.core import make_vjp
    >>> @unary_to_nary
    ... def grad(fun, x):
    ...     vjp, _ = make_vjp(fun, x)
    ...     return vjp(1.0)
    >>> float(grad(lambda x, y: x * y, 1)(3.0, 4.0))
    3.0
    """

    @functools.wraps(unary_operator)
    def nary_operator(fun, argnum=0, *op_args, **op_kwargs):
        if type(argnum) not in (int, tuple, list):
            raise TypeError(f"{getattr(unary_operator, '__name__', 'operator')}: argnum must be an int or a tuple "
                            f"of ints (the arguments to act on), got {argnum!r}")
        many = not isinstance(argnum, int)

        def nary_f(*args, **kwargs):
            def unary_f(x):
                new_args = list(args)
                if many:
                    for i, v in zip(argnum, x):
                        new_args[i] = v
                else:
                    new_args[argnum] = x
                return fun(*new_args, **kwargs)

            # named and documented as the user's function, as autograd's is (an operator may report fun.__name__)
            unary_f.__name__ = unary_f.__qualname__ = fun_name
            unary_f.__doc__ = getattr(fun, "__doc__", None)
            try:
                x = tuple(args[i] for i in argnum) if many else args[argnum]
            except IndexError:
                raise IndexError(f"{nary_f.__name__}: argnum {argnum!r}, but the function was called with "
                                 f"{len(args)} positional argument(s)") from None
            return unary_operator(unary_f, x, *op_args, **op_kwargs)

        op_name = getattr(unary_operator, "__name__", "operator")
        fun_name = getattr(fun, "__name__", "function")
        nary_f.__name__ = f"{op_name}_of_{fun_name}_wrt_argnum_{argnum}"
        nary_f.__qualname__ = nary_f.__name__
        nary_f.__doc__ = (f"{op_name} of function {fun_name} with respect to argument number {argnum}: takes the "
                          f"arguments of {fun_name} and returns the {op_name}.")
        return nary_f

    return nary_operator
