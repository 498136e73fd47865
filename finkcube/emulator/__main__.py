"""``python -m finkcube.emulator [--port P] ...``: serve the emulator until interrupted."""

from __future__ import annotations

from finkcube.emulator.entry import serve

if __name__ == "__main__":
    raise SystemExit(serve())
