"""``edge frames decode``: a raw capture of a firmware_bridge link, frame by frame.

The renderings (edge/cli/frame_text.py) also serve ``edge serial monitor``.
"""

from __future__ import annotations

import json

import click


@click.group()
def frames() -> None:
    """Inspect firmware_bridge frames (raw captures of a device link)."""


@frames.command("decode")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per frame, then stats.")
def decode(file: str, as_json: bool) -> None:
    """Decode the raw bytes in FILE (as sent on the wire) into readable frames.

    Error counts (CRC, COBS, short, too long, version, payload) come last; a
    partial frame at the end of the file is not counted.
    """
    from edge.cli.frame_text import decode_capture, describe, message_dict

    messages, stats = decode_capture(file)
    for msg in messages:
        click.echo(json.dumps({"event": "frame", **message_dict(msg)}, default=str)
                   if as_json else describe(msg))
    summary = stats.as_dict()
    if as_json:
        click.echo(json.dumps({"event": "stats", **summary, "errors": stats.errors}))
        return
    click.echo(f"{stats.frames_ok} frames decoded, {stats.errors} rejected: " + ", ".join(
        f"{k} {v}" for k, v in summary.items() if k != "frames_ok"))
