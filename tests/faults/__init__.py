"""Every emulator fault, observed from the client side."""

from __future__ import annotations
