"""The metering proxy: OpenAI- and Anthropic-compatible routes that authorize, forward, meter
and settle every model call (docs/proxy.md). Mounted by the composition root (`install`)."""

from creditgate.proxy.routes import install

__all__ = ["install"]
