"""``edge status``: a human summary from the running daemon (its metrics endpoint)."""

from __future__ import annotations

import urllib.error
import urllib.request

import click

from edge.cli.common import print_json


def read_metrics(url: str, timeout: float = 5.0) -> dict[str, list[tuple[dict[str, str], float]]]:
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            text = resp.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        raise click.ClickException(
            f"no daemon answering at {url} ({getattr(exc, 'reason', exc)}): is `edge run` "
            "running, with [ops] metrics_port set?") from exc
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


@click.command()
@click.option("--url", default="http://127.0.0.1:9108/metrics", show_default=True,
              help="The daemon's metrics endpoint.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(url: str, as_json: bool) -> None:
    """What the running daemon is doing: sources, gaps, errors, episodes, outbox."""
    m = read_metrics(url)

    def total(name: str) -> float:
        return sum(v for _, v in m.get(name, []))

    sources = {lab.get("source", "?"): v for lab, v in m.get("edge_source_samples_total", [])}
    source_samples: dict[str, dict[str, int]] = {
        name: {"samples": int(v)} for name, v in sources.items()}
    source_errors: dict[str, int] = {f"{lab['source']}:{lab['kind']}": int(v)
                                     for lab, v in m.get("edge_source_errors_total", [])}
    episodes: dict[str, int] = {f"{lab['kind']}/{lab['priority']}": int(v)
                                for lab, v in m.get("edge_episodes_total", [])}
    summary: dict[str, object] = {
        "sources": source_samples,
        "source_errors": source_errors,
        "reconnects": int(total("edge_source_reconnects_total")),
        "gaps": int(total("edge_pipeline_gaps_total")),
        "queue_depth": int(total("edge_pipeline_queue_depth")),
        "episodes": episodes,
        "processor_errors": int(total("edge_processor_errors_total")),
        "outbox_pending": int(total("edge_outbox_pending")),
    }
    if as_json:
        print_json(summary)
        return
    click.echo(f"sources: {len(sources)}")
    for name, v in source_samples.items():
        click.echo(f"  {name}: {v['samples']} samples")
    click.echo(f"gaps: {summary['gaps']}  reconnects: {summary['reconnects']}  "
               f"queue: {summary['queue_depth']}  processor errors: "
               f"{summary['processor_errors']}")
    for key, n in source_errors.items():
        click.echo(f"  error {key}: {n}")
    eps = ", ".join(f"{k} {n}" for k, n in episodes.items()) or "none"
    click.echo(f"episodes: {eps}")
    click.echo(f"outbox: {summary['outbox_pending']} awaiting sync")
