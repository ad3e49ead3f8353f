"""Per-method handler wrappers, applied once when a service registers its handlers.

A grpc.aio server interceptor runs on every call: one more coroutine and one more freshly built
handler per interceptor per call. What protoserve does around its handlers (metrics, the API key
check, the answer to undecodable bytes) depends only on the method, so each wrapper wraps a
method's handler once, at registration, and a call pays only for the wrapped behaviour. The
caller's metadata, which the key check needs, is read from the call's context.

A wrapper takes the full method name (``/package.Service/Method``) and the handler, and returns a
handler of the same shape. Wrappers listed first run outermost.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc

HandlerWrapper = Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]
Behavior = Callable[..., Any]

_MAKERS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def behavior_of(handler: grpc.RpcMethodHandler) -> Behavior:
    """The handler's one behaviour function, whatever its shape."""
    return (handler.unary_unary or handler.unary_stream or handler.stream_unary  # type: ignore[no-any-return]
            or handler.stream_stream)


def with_behavior(
    handler: grpc.RpcMethodHandler, behavior: Behavior, request_deserializer: Callable[[bytes], Any] | None = None
) -> grpc.RpcMethodHandler:
    """A handler of the same shape and serializers as handler, running behavior instead."""
    make = _MAKERS[(handler.request_streaming, handler.response_streaming)]
    return make(  # type: ignore[operator]
        behavior,
        request_deserializer=request_deserializer or handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


# What a check returns: None to let the call through, or the awaitable that refuses it (the
# context's abort). A plain function, not a coroutine: letting a call through costs no coroutine.
Check = Callable[[Any, grpc.aio.ServicerContext], Awaitable[None] | None]


def before_each_call(
    handler: grpc.RpcMethodHandler,
    check: Check,
    request_deserializer: Callable[[bytes], Any] | None = None,
) -> grpc.RpcMethodHandler:
    """The handler with ``check(request, context)`` run before its behaviour on every call
    (request: the message, or the iterator of a client stream); a check that refuses the call
    returns ``context.abort(...)``, which is awaited. Works for every shape, async generators included."""
    inner = behavior_of(handler)
    if inspect.isasyncgenfunction(inner):
        async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            refusal = check(request, context)
            if refusal is not None:
                await refusal
            async for item in inner(request, context):
                yield item
        return with_behavior(handler, stream, request_deserializer)

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        refusal = check(request, context)
        if refusal is not None:
            await refusal
        result = inner(request, context)
        return await result if inspect.isawaitable(result) else result

    return with_behavior(handler, call, request_deserializer)


class _WrappedGenericHandler(grpc.GenericRpcHandler):
    """A generic handler whose answers are wrapped, each method's handler once."""

    def __init__(self, inner: grpc.GenericRpcHandler, wrap: HandlerWrapper) -> None:
        self._inner = inner
        self._wrap = wrap
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        known = self._wrapped.get(method)
        if known is None or known[0] is not handler:  # only methods the inner handler serves
            known = self._wrapped[method] = (handler, self._wrap(method, handler))
        return known[1]


class WrappingRegistrar:
    """Stands in for the server while services register (``add_*Servicer_to_server``, health,
    reflection), wrapping every method handler on its way in."""

    def __init__(self, server: grpc.aio.Server, wrappers: Sequence[HandlerWrapper]) -> None:
        self._server = server
        self._wrappers = list(wrappers)

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        for wrapper in reversed(self._wrappers):  # the first listed ends up outermost
            handler = wrapper(method, handler)
        return handler

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(tuple(_WrappedGenericHandler(h, self.wrap) for h in handlers))

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        wrapped = {name: self.wrap(f"/{service}/{name}", handler) for name, handler in handlers.items()}
        self._server.add_registered_method_handlers(service, wrapped)
